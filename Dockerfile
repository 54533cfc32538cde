# pgvector-backup as a service: Node 24, the PostgreSQL clients 13 to 17 (pg_dump must be at least as new as the
# server; the CLI picks the closest major), and the bundled CLI (dist/cli is self-contained: no npm install here).
# Build:  docker build -t pgvector-backup .
# Use:    docker compose --profile backup up -d      (compose.yaml: the schedule in the foreground, logs to stdout)
#         docker run --rm --init --env-file .env pgvector-backup backup --verify quick     (any CLI command)
FROM node:24-bookworm-slim

# Debian bookworm has only PostgreSQL 15. postgresql-common ships the PGDG repository's signing key and the script
# that adds the repository (apt.postgresql.org); the clients install side by side under /usr/lib/postgresql/<major>.
ARG PG_MAJORS="13 14 15 16 17"
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates postgresql-common zstd; \
    /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y; \
    clients=""; for v in $PG_MAJORS; do clients="$clients postgresql-client-$v"; done; \
    apt-get install -y --no-install-recommends $clients; \
    rm -rf /var/lib/apt/lists/*; \
    for v in $PG_MAJORS; do /usr/lib/postgresql/$v/bin/pg_dump --version; done

COPY dist/cli/ /opt/pgvector-backup/dist/cli/
COPY package.json LICENSE /opt/pgvector-backup/
RUN ln -s /opt/pgvector-backup/dist/cli/index.js /usr/local/bin/pgvector-backup \
    && mkdir -p /data/backups /data/logs /data/metrics \
    && chown -R node:node /data

# Relative paths (backup-dir, metrics/backup.prom, logs/) start here; compose mounts volumes on these directories.
WORKDIR /data
USER node
ENV NODE_ENV=production

ENTRYPOINT ["node", "/opt/pgvector-backup/dist/cli/index.js"]
# The schedule in the foreground: sleeps until the next time, runs the backup, repeats; SIGTERM stops it.
CMD ["schedule", "run"]
