/**
 * The krtsync command line. Commands are added here as the daemon grows
 * (run, check, show, route, reload, feed); today it only describes itself.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../package.json') as { version: string };

export function main(argv: readonly string[]): void {
  void yargs(hideBin([...argv]))
    .scriptName('krtsync')
    .usage('$0 <command> [options]\n\nLinux kernel route sync daemon.')
    .version(pkg.version)
    .strict()
    .demandCommand(1, 'Name a command; see --help.')
    .help()
    .parse();
}

main(process.argv);
