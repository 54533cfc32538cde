// The core never imports @actions/core: it logs through this interface, so the same code runs from the
// action and from the CLI, and every line passes through the secret scrubber first.

export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** Runs fn inside a collapsible log group (the action) or under a heading (the CLI). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** A terminal line that progress rewrites in place (the CLI on a terminal); absent: plain periodic lines. */
  readonly live?: LiveLine;
}

/** One line of a terminal, rewritten in place (\r) by src/progress.ts. */
export interface LiveLine {
  update(text: string): void;
  /** Removes the line (the work ended). */
  clear(): void;
}

/** Replaces every registered secret (and its URL-encoded form) in text. */
export class Secrets {
  private readonly values = new Set<string>();

  /**
   * Registers a secret; with `derived`, also the forms it takes inside URLs and headers (percent-encoded,
   * base64). Returns the forms that were new, for the runner's masking.
   */
  add(value: string | undefined, derived = true): string[] {
    if (!value || value.length < 3) return [];
    const forms = [value];
    if (derived) {
      forms.push(encodeURIComponent(value), Buffer.from(value).toString('base64'));
      // Percent-encoding of everything but unreserved characters, as some tools print it.
      forms.push(encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`));
    }
    const added = [...new Set(forms)].filter((f) => !this.values.has(f));
    for (const f of added) this.values.add(f);
    return added;
  }

  list(): string[] {
    return [...this.values];
  }

  scrub(text: string): string {
    let out = text;
    // Longest first, so a value that contains another is replaced whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) {
      out = out.split(v).join('***');
    }
    // Whatever a URL's password is, never print it.
    // (The documentation placeholder "password" is left as it is.)
    return out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)@/gi, (m, user: string, pw: string) => (pw === 'password' ? m : `${user}***@`));
  }
}

/**
 * The live line on a terminal: `\r` + erase-line, then the text cut to the terminal's width (a wrapped line
 * could not be rewritten). Other lines are printed above it: erase, print, redraw.
 */
export class TerminalLine implements LiveLine {
  private text = '';
  constructor(
    private readonly raw: (s: string) => void,
    private readonly columns: () => number | undefined = () => undefined,
  ) {}
  update(text: string): void {
    const width = this.columns();
    this.text = width && width > 1 && text.length >= width ? text.slice(0, width - 2) + '…' : text;
    this.raw('\r\x1b[2K' + this.text);
  }
  clear(): void {
    if (!this.text) return;
    this.text = '';
    this.raw('\r\x1b[2K');
  }
  /** Writes a whole line without losing the live one. */
  around(write: () => void): void {
    if (!this.text) return write();
    this.raw('\r\x1b[2K');
    write();
    this.raw(this.text);
  }
}

/** A logger for the CLI and tests: plain lines on stderr/stdout; with a terminal, a live progress line. */
export class ConsoleLogger implements Logger {
  readonly live?: LiveLine;
  private readonly terminal: TerminalLine | undefined;
  constructor(
    private readonly secrets: Secrets,
    private readonly verbose = false,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
    terminal?: TerminalLine,
  ) {
    this.terminal = terminal;
    if (terminal) this.live = { update: (text) => terminal.update(this.secrets.scrub(text)), clear: () => terminal.clear() };
  }

  private line(text: string): void {
    if (this.terminal) this.terminal.around(() => this.write(text));
    else this.write(text);
  }
  info(message: string): void {
    this.line(this.secrets.scrub(message));
  }
  warning(message: string): void {
    this.line('warning: ' + this.secrets.scrub(message));
  }
  error(message: string): void {
    this.line('error: ' + this.secrets.scrub(message));
  }
  debug(message: string): void {
    if (this.verbose) this.line('debug: ' + this.secrets.scrub(message));
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.line(`== ${this.secrets.scrub(name)}`);
    return fn();
  }
}

/** Collects log lines (tests). */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  info(m: string): void {
    this.lines.push(m);
  }
  warning(m: string): void {
    this.lines.push('warning: ' + m);
  }
  error(m: string): void {
    this.lines.push('error: ' + m);
  }
  debug(m: string): void {
    this.lines.push('debug: ' + m);
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push('== ' + name);
    return fn();
  }
}
