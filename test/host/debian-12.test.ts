/** The pristine-host tier on Debian 12 (see ./suite.ts): a fresh root, installed as the README says, booted with systemd. */
import { pristineTier } from './suite.js';

pristineTier('debian-12');
