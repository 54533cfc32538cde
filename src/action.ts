// The GitHub Action: inputs -> Config -> mode -> outputs and job summary. The only place that calls setFailed.
import * as core from '@actions/core';
import { buildConfig } from './config.js';
import { onCancel } from './context.js';
import { describeError, errorLine } from './errors.js';
import { INPUTS, type InputName } from './inputs.js';
import { Secrets, type Logger } from './logger.js';
import { resolveConnection } from './postgres/connection.js';
import { reportFailure } from './metrics/report.js';
import { runMode } from './run.js';
import type { Reporter } from './report/reporter.js';

class ActionLogger implements Logger {
  constructor(private readonly secrets: Secrets) {}
  info(m: string): void {
    core.info(this.secrets.scrub(m));
  }
  warning(m: string): void {
    core.warning(this.secrets.scrub(m));
  }
  error(m: string): void {
    core.error(this.secrets.scrub(m));
  }
  debug(m: string): void {
    core.debug(this.secrets.scrub(m));
  }
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return core.group(this.secrets.scrub(name), fn);
  }
}

class ActionReporter implements Reporter {
  constructor(private readonly secrets: Secrets) {}
  output(name: Parameters<Reporter['output']>[0], value: string | number | boolean): void {
    core.setOutput(name, this.secrets.scrub(String(value)));
  }
  async summary(markdown: string): Promise<void> {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(this.secrets.scrub(markdown), true).write();
  }
}

export async function runAction(): Promise<void> {
  const secrets = new Secrets();
  const mask = (value: string | undefined, derived: boolean): void => {
    for (const form of secrets.add(value, derived)) core.setSecret(form);
  };
  // Mask secret inputs before anything else can print them.
  for (const spec of INPUTS) {
    if ('secret' in spec && spec.secret) mask(core.getInput(spec.name), false);
  }
  const logger = new ActionLogger(secrets);
  try {
    const config = buildConfig((name: InputName) => core.getInput(name));
    // The password in every form it can take (raw, percent-encoded, base64).
    mask(config.source.password, true);
    for (const s of config.secrets) mask(s, false);
    if (config.testRestoreUrl) mask(resolveConnection(config.testRestoreUrl, {}, 'test-restore-url').password, true);
    await runMode({ config, logger, facts: {}, reporter: new ActionReporter(secrets), onCancel });
  } catch (err) {
    // (Metrics were reported inside runMode, success or not.)
    core.setFailed(secrets.scrub(errorLine(err)));
    if (!(err instanceof Error) || !['BackupError', 'ConfigurationError'].includes(err.name)) {
      core.debug(secrets.scrub(err instanceof Error ? (err.stack ?? err.message) : String(err)));
    }
  } finally {
    // The post step reports a failure only when this step did not get here (crashed or cancelled).
    core.saveState(STATE_DONE, 'true');
  }
}

export const STATE_DONE = 'main-finished';

/** The post step (post-if: always()): when the main step crashed or was cancelled, record the failure. */
export async function runPost(): Promise<void> {
  if (core.getState(STATE_DONE) === 'true') return;
  const secrets = new Secrets();
  for (const spec of INPUTS) {
    if ('secret' in spec && spec.secret) for (const f of secrets.add(core.getInput(spec.name), false)) core.setSecret(f);
  }
  const logger = new ActionLogger(secrets);
  try {
    const config = buildConfig((name: InputName) => core.getInput(name));
    if (config.mode !== 'backup') return;
    logger.warning('The backup step did not finish (cancelled or crashed): recording the failure in the metrics');
    await reportFailure({ config, logger, facts: {}, reporter: new ActionReporter(secrets), onCancel });
  } catch (err) {
    logger.warning(`Recording the failure failed: ${describeError(err)}`);
  }
}
