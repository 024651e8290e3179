// The floor a Node.js proxy meets on this machine, for `npm run bench -- --cold --floor`:
// the least a process can do to pass a blob from the upstream to a client,
// then that plus hashing (on the main thread, or on a second thread that
// gets a copy of each chunk), then that plus writing the file. Not ferry: no
// verification before the last byte, no resume, no readers but one.
// node bench/floor-proxy.ts MODE UPSTREAM_URL PORT DIR
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { request } from 'undici'

const HASHER = `
const { parentPort } = require('node:worker_threads')
const hash = require('node:crypto').createHash('sha256')
parentPort.on('message', m => { if (m === null) parentPort.postMessage(hash.digest('hex')); else hash.update(m) })
`

const [mode, upstream, port, dir] = process.argv.slice(2) as [string, string, string, string]
let n = 0

createServer((req, res) => {
  void (async () => {
    if (req.url === '/v2/') { res.end('{}'); return }
    if (mode === 'raw') { await raw(req.url!, res); return }
    // accept on, and the headers a client checks back (manifests pass through too, for --small-cold --floor)
    const up = await request(`${upstream}${req.url!}`, { headers: req.headers.accept === undefined ? {} : { accept: req.headers.accept } })
    const pass: Record<string, string> = { 'content-length': up.headers['content-length'] as string }
    for (const h of ['content-type', 'docker-content-digest']) if (typeof up.headers[h] === 'string') pass[h] = up.headers[h]
    res.writeHead(up.statusCode, pass)
    const hash = mode === 'pipe' || mode === 'hash-thread' ? undefined : createHash('sha256')
    const hasher = mode === 'hash-thread' ? new Worker(HASHER, { eval: true }) : undefined
    const fh = mode === 'hash+file' ? await open(join(dir, `blob-${n++}`), 'w') : undefined
    let pos = 0
    let writing: Promise<unknown> = Promise.resolve()
    let written = 0
    for await (const chunk of up.body as AsyncIterable<Buffer>) {
      hash?.update(chunk)
      // a copy goes to the hashing thread (the chunk itself goes on to the client)
      if (hasher !== undefined) { const copy = new Uint8Array(chunk.length); copy.set(chunk); hasher.postMessage(copy, [copy.buffer]) }
      if (fh !== undefined) {
        const at = pos
        writing = writing.then(async () => { await fh.write(chunk, 0, chunk.length, at); written += chunk.length })
        if (pos - written > 8 * 1024 * 1024) await writing
      }
      pos += chunk.length
      if (!res.write(chunk)) await new Promise(resolve => res.once('drain', resolve))
    }
    await writing
    await fh?.close()
    hash?.digest('hex')
    if (hasher !== undefined) {
      hasher.postMessage(null)
      await new Promise(resolve => hasher.once('message', resolve))
      await hasher.terminate()
    }
    res.end()
  })().catch(err => { res.destroy(err as Error) })
}).listen(Number(port), '127.0.0.1')

/** No HTTP client at all: a socket to the upstream, its headers skipped, each chunk written on as it comes. */
async function raw (path: string, res: ServerResponse): Promise<void> {
  const url = new URL(upstream)
  const sock = connect(Number(url.port), url.hostname)
  sock.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`)
  let head = Buffer.alloc(0)
  let length = -1
  let sent = 0
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (chunk: Buffer) => {
      if (length < 0) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const text = head.subarray(0, end).toString('latin1')
        if (/ 30[0-9] /.test(text.split('\r\n')[0]!)) { reject(new Error('redirect: not in the floor')); return }
        length = Number(/content-length: *(\d+)/i.exec(text)?.[1])
        res.writeHead(200, { 'content-length': length })
        chunk = head.subarray(end + 4)
      }
      sent += chunk.length
      if (!res.write(chunk)) { sock.pause(); res.once('drain', () => sock.resume()) }
      if (sent >= length) { res.end(); sock.destroy(); resolve() }
    })
    sock.on('error', reject)
  })
}
