// Outputs and the job summary go through this interface: the action writes them with @actions/core, the CLI
// prints them, tests collect them.
import type { OutputName } from '../inputs.js';

export interface Reporter {
  output(name: OutputName, value: string | number | boolean): void;
  /** Appends markdown to the job summary. */
  summary(markdown: string): Promise<void>;
}

export class MemoryReporter implements Reporter {
  readonly outputs: Partial<Record<OutputName, string>> = {};
  readonly summaries: string[] = [];
  output(name: OutputName, value: string | number | boolean): void {
    this.outputs[name] = String(value);
  }
  async summary(markdown: string): Promise<void> {
    this.summaries.push(markdown);
  }
}

/** A markdown table; cells are escaped so names with | or newlines cannot break it. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cell = (v: string | number): string => String(v).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}
