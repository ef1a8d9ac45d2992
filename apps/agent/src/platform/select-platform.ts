import { DarwinPlatform } from './darwin-platform';
import { LinuxPlatform } from './linux-platform';
import type { OsPlatform, OsPlatformOptions } from './os-platform';
import { WindowsPlatform } from './windows-platform';

/** The OS services for `platform` (process.platform); any other OS is refused with its name. */
export function selectPlatform(platform: NodeJS.Platform, opts: OsPlatformOptions): OsPlatform {
  switch (platform) {
    case 'linux':
      return new LinuxPlatform(opts);
    case 'darwin':
      return new DarwinPlatform(opts);
    case 'win32':
      return new WindowsPlatform(opts);
    default:
      throw new Error(`trellisd does not run on ${platform}: Linux, macOS and Windows only`);
  }
}
