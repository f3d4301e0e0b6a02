/** The pristine-host tier on Debian 13 (see ./suite.ts): a fresh root, installed as the README says, booted with systemd. */
import { pristineTier } from './suite.js';

pristineTier('debian-13');
