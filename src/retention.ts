// Which backups to keep: a pure policy, table-tested. Only complete, good backups count towards what must be
// kept; the newest good backup is never deleted, whatever the settings.

export interface RetentionPolicy {
  /** Keep backups younger than this many days; 0 keeps all by age. */
  days: number;
  /** Always keep at least this many newest good backups. */
  keepMin: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export interface RetentionCandidate {
  name: string;
  createdAt: Date;
  /** Complete (manifest valid) and not failed verification. */
  good: boolean;
}

export interface RetentionDecision {
  name: string;
  createdAt: Date;
  keep: boolean;
  reasons: string[];
}

const DAY_MS = 86_400_000;

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / DAY_MS + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

const BUCKETS: Array<[keyof RetentionPolicy, string, (d: Date) => string]> = [
  ['daily', 'daily', (d) => d.toISOString().slice(0, 10)],
  ['weekly', 'weekly', isoWeek],
  ['monthly', 'monthly', (d) => d.toISOString().slice(0, 7)],
  ['yearly', 'yearly', (d) => d.toISOString().slice(0, 4)],
];

/**
 * Decides for each backup whether to keep it, and why. Orders by createdAt (UTC), never by name.
 * Grandfather-father-son buckets follow restic's meaning: the newest backup of each of the last N periods that
 * have a backup.
 */
export function planRetention(backups: RetentionCandidate[], policy: RetentionPolicy, now: Date): RetentionDecision[] {
  const sorted = [...backups].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const decisions = new Map<RetentionCandidate, string[]>(sorted.map((b) => [b, []]));
  const good = sorted.filter((b) => b.good);

  good.slice(0, Math.max(1, policy.keepMin)).forEach((b, i) => decisions.get(b)!.push(i === 0 ? 'newest good backup' : `keep-min ${policy.keepMin}`));

  for (const [key, label, bucketOf] of BUCKETS) {
    const n = policy[key];
    if (n <= 0) continue;
    const seen = new Set<string>();
    for (const b of good) {
      const bucket = bucketOf(b.createdAt);
      if (seen.has(bucket)) continue;
      seen.add(bucket);
      if (seen.size > n) break;
      decisions.get(b)!.push(`${label} ${bucket}`);
    }
  }

  if (policy.days > 0) {
    for (const b of sorted) {
      if (now.getTime() - b.createdAt.getTime() < policy.days * DAY_MS) decisions.get(b)!.push(`younger than ${policy.days} days`);
    }
  } else {
    for (const b of sorted) decisions.get(b)!.push('retention-days 0 keeps all');
  }

  return sorted.map((b) => {
    const reasons = decisions.get(b)!;
    return { name: b.name, createdAt: b.createdAt, keep: reasons.length > 0, reasons };
  });
}
