// Runs s3rver (a real S3 API server) in its own process: it needs --openssl-legacy-provider for paged listings
// (its continuation tokens use DES). Prints the port, then serves until killed.
import S3rver from 's3rver';

const [directory] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'backups' }] });
const { port } = await server.run();
process.stdout.write(`${port}\n`);
