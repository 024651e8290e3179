// The Node.js limit for the warm small-image load: a bare node:http server
// answering the same requests with the same bytes, from memory, in one
// process (ferry's default worker count). What ferry does per request beyond
// this (routing, access, the tag cache, metrics, logs) is its own cost.
// node bench/node-limit.ts PORT UPSTREAM_URL PATHS_JSON
// PATHS_JSON: [[path, accept or null], ...]; each is fetched once from the upstream before listening.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

const [port, upstream, pathsFile] = process.argv.slice(2) as [string, string, string]
const paths = JSON.parse(readFileSync(pathsFile, 'utf8')) as [string, string | null][]
const answers = new Map<string, { headers: Record<string, string | number>, body: Buffer }>()
for (const [path, accept] of paths) {
  const res = await fetch(upstream + path, { headers: accept === null ? {} : { accept } })
  const body = Buffer.from(await res.arrayBuffer())
  answers.set(path, {
    headers: {
      'content-type': res.headers.get('content-type') ?? 'application/octet-stream',
      'content-length': body.length,
      'docker-content-digest': res.headers.get('docker-content-digest') ?? '',
      'docker-distribution-api-version': 'registry/2.0',
    },
    body,
  })
}
createServer((req, res) => {
  const a = answers.get(req.url ?? '')
  if (a === undefined) { res.writeHead(req.url === '/v2/' ? 200 : 404, { 'content-length': 2 }); res.end('{}'); return }
  res.writeHead(200, a.headers)
  res.end(req.method === 'HEAD' ? undefined : a.body)
}).listen(Number(port), '127.0.0.1', () => { process.stdout.write('listening\n') })
