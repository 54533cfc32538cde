// Reading and writing the user's crontab through the `crontab` command (`crontab -l`, `crontab -`), or the
// command the CRONTAB environment variable names (the tests use a script over a temporary file). Never a shell.
import { readdirSync, readFileSync } from 'node:fs';
import { BackupError } from '../errors.js';
import { lastLines, run, type Result } from '../exec.js';

export interface CrontabAccess {
  /** The command used, for messages. */
  command: string;
  /** True for the system's crontab (not a CRONTAB override): then it is worth checking that cron runs. */
  system: boolean;
  read(): Promise<string>;
  write(text: string): Promise<void>;
}

export function crontabAccess(env: NodeJS.ProcessEnv): CrontabAccess {
  const override = env.CRONTAB?.trim();
  const command = override || 'crontab';
  const call = async (args: string[], input?: string): Promise<Result> => {
    try {
      return await run({ file: command, args, env }, input);
    } catch (err) {
      const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
      if (code === 'ENOENT' || code === 'EACCES') {
        throw new BackupError(
          override ? `Cannot run the CRONTAB command ${command}: ${code === 'ENOENT' ? 'not found' : 'permission denied'}` : 'crontab is not installed',
          override ? 'Set CRONTAB to an executable crontab command, or unset it' : 'Install cron (Debian/Ubuntu: sudo apt-get install cron; RHEL/Fedora: sudo dnf install cronie), or use the Docker service (pgvector-backup schedule run)',
          { code: 'tool-crontab-missing', cause: err },
        );
      }
      throw err;
    }
  };
  return {
    command,
    system: !override,
    async read(): Promise<string> {
      const r = await call(['-l']);
      if (r.code === 0) return r.stdout;
      // "no crontab for alice": an empty crontab, not an error.
      if (/no crontab for/i.test(r.stderr)) return '';
      throw new BackupError(`${command} -l failed (exit ${r.code ?? r.signal}): ${lastLines(r.stderr) || 'no message'}`, 'Check that you may use cron (/etc/cron.allow and /etc/cron.deny) and that crontab works for this user', {
        code: 'run-crontab',
      });
    },
    async write(text: string): Promise<void> {
      const r = await call(['-'], text);
      if (r.code !== 0) {
        throw new BackupError(`${command} - refused the new crontab (exit ${r.code ?? r.signal}): ${lastLines(r.stderr) || 'no message'}`, 'Nothing was changed; check crontab -l and that you may use cron (/etc/cron.allow and /etc/cron.deny)', {
          code: 'run-crontab',
        });
      }
    },
  };
}

/** True when a cron daemon (cron, crond, busybox crond) seems to run; undefined when /proc cannot tell. */
export function cronDaemonRunning(): boolean | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm === 'cron' || comm === 'crond' || comm === 'cronie') return true;
    } catch {
      /* gone */
    }
  }
  return false;
}
