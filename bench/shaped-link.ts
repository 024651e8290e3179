// A WAN link on loopback, for the bench: a TCP relay in front of the
// upstream that delivers each chunk half a round trip after it has crossed
// a link of the given rate, shared by every connection through it (one
// cluster's way out to a hub), in each direction. This kernel has no netem;
// a relay needs no namespace and shapes only the path it stands on.
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface ShapedLink {
  readonly url: string
  readonly host: string
  /** Bytes the link carried towards its clients (from the upstream). */
  bytesDown (): number
  close (): Promise<void>
}

/** A link of `bytesPerSecond`: each chunk waits its turn, and arrives when it has crossed. */
class Wire {
  private freeAt = 0
  private readonly perMs: number
  carried = 0
  constructor (bytesPerSecond: number) { this.perMs = bytesPerSecond / 1000 }
  /** When a chunk of `bytes` handed over now has crossed, in performance.now() ms. */
  send (bytes: number): number {
    this.freeAt = Math.max(performance.now(), this.freeAt) + bytes / this.perMs
    this.carried += bytes
    return this.freeAt
  }
}

/** Bytes a direction holds before it stops reading: about what a 1 Gbit/s, 30 ms path has in flight. */
const IN_FLIGHT = 4 * 1024 * 1024

function shape (from: Socket, to: Socket, wire: Wire, delayMs: number): void {
  const queue: { chunk: Buffer | undefined, due: number }[] = []
  let held = 0
  let timer: NodeJS.Timeout | undefined
  const deliver = (): void => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0]!.due <= now + 0.5) {
      const { chunk } = queue.shift()!
      if (chunk === undefined) { to.end(); return }
      held -= chunk.length
      to.write(chunk)
    }
    if (held < IN_FLIGHT / 2 && from.isPaused()) from.resume()
    schedule()
  }
  const schedule = (): void => {
    if (timer !== undefined || queue.length === 0) return
    timer = setTimeout(deliver, Math.max(0, queue[0]!.due - performance.now()))
  }
  from.on('data', (chunk: Buffer) => {
    queue.push({ chunk, due: wire.send(chunk.length) + delayMs })
    held += chunk.length
    if (held > IN_FLIGHT) from.pause()
    schedule()
  })
  from.on('end', () => {
    const last = queue.length > 0 ? queue[queue.length - 1]!.due : performance.now() + delayMs
    queue.push({ chunk: undefined, due: last })
    schedule()
  })
}

export async function startShapedLink (target: { host: string, port: number }, opts: { rttMs: number, bitsPerSecond: number }): Promise<ShapedLink> {
  const down = new Wire(opts.bitsPerSecond / 8)
  const up = new Wire(opts.bitsPerSecond / 8)
  const sockets = new Set<Socket>()
  const server: Server = createServer(client => {
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.setNoDelay(true)
      s.on('error', () => { client.destroy(); upstream.destroy() })
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    shape(client, upstream, up, opts.rttMs / 2)
    shape(upstream, client, down, opts.rttMs / 2)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    bytesDown: () => down.carried,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}
