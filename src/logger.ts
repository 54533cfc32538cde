// The core never imports @actions/core: it logs through this interface, so the same code runs from the
// action and from the CLI, and every line passes through the secret scrubber first.

export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** Runs fn inside a collapsible log group (the action) or under a heading (the CLI). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
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

/** A logger for the CLI and tests: plain lines on stderr/stdout. */
export class ConsoleLogger implements Logger {
  constructor(
    private readonly secrets: Secrets,
    private readonly verbose = false,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
  ) {}

  info(message: string): void {
    this.write(this.secrets.scrub(message));
  }
  warning(message: string): void {
    this.write('warning: ' + this.secrets.scrub(message));
  }
  error(message: string): void {
    this.write('error: ' + this.secrets.scrub(message));
  }
  debug(message: string): void {
    if (this.verbose) this.write('debug: ' + this.secrets.scrub(message));
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.write(`== ${this.secrets.scrub(name)}`);
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
