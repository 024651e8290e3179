// Clients that hold on without moving (hardening finding 6): readers that
// take nothing pin little memory and are dropped after limits.idleTimeout,
// connections that send nothing or send headers slowly are closed, and one
// address cannot hold more than limits.connectionsPerClient connections.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { blob, pushBlob } from '../helpers/images.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'

const MiB = 1024 * 1024
let upstream: Registry
let ferry: Ferry
let path: string

t.before(async () => {
  upstream = await startRegistry()
  const b = blob('application/octet-stream', randomBytes(64 * MiB))
  await pushBlob(upstream.url, 'big/blob', b)
  path = `/v2/big/blob/blobs/${b.digest}`
  ferry = await startFerry({
    config: {
      upstreams: [{ name: 'up', url: upstream.url, default: true }],
      limits: { idleTimeout: '4s', headersTimeout: '2s', connectionsPerClient: 300 },
    },
  })
  // cached, and read once, so the process has warmed up
  t.equal((await get(`${ferry.url}${path}`)).body.length, 64 * MiB)
})
t.teardown(async () => { await ferry?.stop(); await upstream?.stop() })

const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${ferry.proc.child.pid}/status`, 'utf8'))![1]) * 1024

/** Connections that do something and then nothing; when ferry closed each, ms after `t0`. */
function hold (n: number, send: (s: Socket) => void, opts: { from?: string, pause?: boolean } = {}): { sockets: Socket[], closed: Promise<number[]> } {
  const sockets: Socket[] = []
  const t0 = Date.now()
  const closed = Promise.all(Array.from({ length: n }, () => new Promise<number>(resolve => {
    const s = connect({ port: ferry.port, host: '127.0.0.1', ...(opts.from !== undefined ? { localAddress: opts.from } : {}) }, () => {
      send(s)
      // a paused socket learns that ferry closed it only when it reads again
      if (opts.pause === true) s.pause(); else s.resume()
    })
    s.on('error', () => {})
    s.on('close', () => resolve(Date.now() - t0))
    sockets.push(s)
  })))
  return { sockets, closed }
}

t.test('200 clients that ask for a 64 MiB blob and read nothing: little memory, dropped after idleTimeout', async t => {
  const before = rss()
  const received: number[] = []
  const { sockets, closed } = hold(200, s => {
    const i = received.push(0) - 1
    s.on('data', (d: Buffer) => { received[i]! += d.length })
    s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`)
  }, { pause: true })
  await new Promise(resolve => setTimeout(resolve, 2000))
  const during = rss()
  // the kernel takes the first tens of MiB from a client that reads nothing, so such a client reaches 256 KiB
  // buffers (two per connection at most: one written, one read ahead), never 1 MiB ones: 100 MiB for 200, not 400
  t.ok(during - before < 120 * MiB, `RSS grew by ${Math.round((during - before) / MiB)} MiB for 200 stuck readers (before: ${Math.round(before / MiB)} MiB)`)
  // past idleTimeout (4 s), ferry has dropped them; a paused socket learns it only when it reads again
  await new Promise(resolve => setTimeout(resolve, 5000))
  const cut = (await ferry.waitForLogs(l => l.msg === 'blob transfer cut', 200, 5000)).length
  t.ok(cut >= 200, `ferry cut all 200 transfers (${cut} logged)`)
  for (const s of sockets) s.resume()
  await closed
  t.ok(received.every(n => n < 64 * MiB), 'none of them got the whole blob')
  t.equal((await get(`${ferry.url}${path}`)).body.length, 64 * MiB, 'and a client that reads gets it whole')
})

t.test('connections that send nothing, and headers sent a line every half second, are closed', async t => {
  const idle = hold(100, () => {})
  const slowloris = hold(50, s => {
    s.write('GET /v2/ HTTP/1.1\r\n')
    const timer = setInterval(() => { if (!s.destroyed) s.write('x-slow: y\r\n') }, 500)
    s.on('close', () => clearInterval(timer))
  })
  const idleTimes = await idle.closed
  const slowTimes = await slowloris.closed
  t.ok(Math.max(...idleTimes) < 12_000, `silent connections closed after at most ${Math.max(...idleTimes)} ms (idleTimeout 4 s)`)
  t.ok(Math.max(...slowTimes) < 8_000, `slow headers cut after at most ${Math.max(...slowTimes)} ms (headersTimeout 2 s)`)
})

t.test('one address holds at most connectionsPerClient connections', async t => {
  const many = hold(320, () => {}, { from: '127.0.0.7' })
  await new Promise(resolve => setTimeout(resolve, 1000))
  const open = many.sockets.filter(s => !s.destroyed).length
  t.equal(open, 300, `300 of 320 stay open (${open})`)
  const other = await get(`${ferry.url}/v2/`, {}, 'GET', { localAddress: '127.0.0.8' })
  t.equal(other.status, 200, 'another address is served meanwhile')
  for (const s of many.sockets) s.destroy()
  await many.closed
})
