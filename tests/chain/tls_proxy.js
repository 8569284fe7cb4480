// A TLS-terminating JSON-RPC proxy for tests: https on 127.0.0.1 (a free port, printed as one JSON
// line {"port": N} on stdout) in front of an http node, optionally requiring HTTP Basic auth —
// what a hosted node provider looks like to the evm-jsonrpc adapter.
//   [WATCH_PID=pid] node tls_proxy.js <cert.pem> <key.pem> <upstream http url> [user:password]
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

const [certFile, keyFile, upstreamUrl, credentials] = process.argv.slice(2);
if (!certFile || !keyFile || !upstreamUrl) {
  console.error('usage: node tls_proxy.js <cert.pem> <key.pem> <upstream http url> [user:password]');
  process.exit(2);
}
const upstream = new URL(upstreamUrl);
const agent = new http.Agent({ keepAlive: true });
const expected = credentials ? 'Basic ' + Buffer.from(credentials).toString('base64') : null;

const server = https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (req, res) => {
  if (expected && req.headers.authorization !== expected) {
    res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="rpc"' });
    res.end('unauthorized');
    return;
  }
  const forward = http.request(
    { host: upstream.hostname, port: upstream.port, path: upstream.pathname, method: req.method, agent,
      headers: { 'content-type': req.headers['content-type'] || 'application/json' } },
    (reply) => {
      res.writeHead(reply.statusCode, { 'content-type': reply.headers['content-type'] || 'application/json' });
      reply.pipe(res);
    });
  forward.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(forward);
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
// WATCH_PID: exit when that process (the test) is gone, however it ended.
if (process.env.WATCH_PID) {
  setInterval(() => {
    try { process.kill(Number(process.env.WATCH_PID), 0); } catch (e) { process.exit(0); }
  }, 500).unref();
}
