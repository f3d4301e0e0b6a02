/**
 * The daily backup's units (when the bundle has `--backup-to`): a oneshot service that runs
 * `selfmail backup --bundle <this bundle>` (target and recipients come from the bundle's own
 * selfmail.yaml at run time) and a timer that apply enables. The service names the bundle's
 * folder, so apply checks that it installs from that very folder.
 */
import type { BuildContext, BundleFile, ServiceModule } from '../bundle/types.js';
import { textFile } from '../bundle/types.js';
import { InputError } from '../errors.js';
import { render } from '../render/index.js';
import { targetText } from './format.js';

export const BACKUP_SERVICE_PATH = 'systemd/selfmail-backup.service';
export const BACKUP_TIMER_PATH = 'systemd/selfmail-backup.timer';

/** A folder a unit file can name as it is (no quoting, no specifiers). */
const UNIT_PATH = /^\/[A-Za-z0-9._/@+-]*$/;

/** The bundle folder the backup service names (`--bundle …` in its ExecStart), if it has one. Pure. */
export function backupBundleOf(serviceText: string): string | undefined {
  return /^ExecStart=selfmail backup --bundle (\S+)$/m.exec(serviceText)?.[1];
}

export const backupService: ServiceModule = {
  name: 'backup',
  async build(ctx: BuildContext): Promise<BundleFile[]> {
    const { backup } = ctx.config;
    if (!backup || ctx.profile.kind !== 'production') return [];
    const bundle = ctx.previous.dir;
    if (!UNIT_PATH.test(bundle) || bundle.includes('%')) {
      throw new InputError([{ field: '--backup-to', message: `needs a bundle folder a systemd unit can name as it is (letters, digits and . _ @ + - /); ${JSON.stringify(bundle)} is not one: move the bundle, or give --backup-to none` }]);
    }
    const service = await render('backup', 'selfmail-backup.service', {
      bundle,
      target: targetText(backup.to),
      folder: backup.to.kind === 'dir' ? backup.to.path : '',
      // A private /tmp would hide a bundle (or a target) kept in /tmp.
      privateTmp: ![bundle, backup.to.kind === 'dir' ? backup.to.path : ''].some((p) => /^\/(var\/)?tmp(\/|$)/.test(p)),
    });
    const timer = await render('backup', 'selfmail-backup.timer', {});
    return [
      textFile(BACKUP_SERVICE_PATH, service, 'runs selfmail backup with the bundle\'s settings'),
      textFile(BACKUP_TIMER_PATH, timer, 'runs selfmail-backup daily'),
    ];
  },
};
