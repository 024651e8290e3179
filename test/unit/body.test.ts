// A file body read as a stream by a slow reader: the bytes must be the
// file's, although the file body reuses its pooled buffers as soon as a
// write is acknowledged.
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'

import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import t from 'tap'
import { bodyReadable, copyRange, fileBody } from '../../src/io/body.ts'
import { scratchDir } from '../helpers/procs.ts'

const bytes = randomBytes(8 * 1024 * 1024 + 5)
const path = join(scratchDir('ferry-body-'), 'blob')
writeFileSync(path, bytes)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Keeps the chunks it was given, as a socket or a file writer does until its write completes. */
async function slowRead (stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of stream) {
    parts.push(chunk as Buffer)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
  return Buffer.concat(parts)
}

t.test('bodyReadable hands a slow reader the file\'s bytes', async t => {
  const fh = await open(path, 'r')
  const got = await slowRead(bodyReadable(fileBody(fh, 0, bytes.length - 1)))
  t.equal(got.length, bytes.length)
  t.equal(sha(got), sha(bytes))
})

t.test('a range of it, too', async t => {
  const fh = await open(path, 'r')
  const got = await slowRead(bodyReadable(fileBody(fh, 1000, 3 * 1024 * 1024)))
  t.ok(got.equals(bytes.subarray(1000, 3 * 1024 * 1024 + 1)))
})

t.test('a plain PassThrough would not do: the pooled buffers are rewritten under it', async t => {
  // the reason bodyReadable copies; if this ever stops failing, the copy can go
  const fh = await open(path, 'r')
  const out = new PassThrough({ highWaterMark: 1024 * 1024 })
  fileBody(fh, 0, bytes.length - 1).writeTo(out).then(() => out.end(), err => out.destroy(err as Error))
  const got = await slowRead(out)
  t.not(sha(got), sha(bytes))
})

/** A client that takes `bytesPerMs` steadily (each write done when its bytes are due), keeping the sizes of the writes it got. */
function pacedClient (bytesPerMs: number): { out: Writable, sizes: number[], got: () => Buffer } {
  const sizes: number[] = []
  const parts: Buffer[] = []
  const started = performance.now()
  let taken = 0
  const out = new Writable({
    write (chunk: Buffer, _enc, cb) {
      sizes.push(chunk.length)
      parts.push(Buffer.from(chunk))
      taken += chunk.length
      setTimeout(cb, Math.max(0, started + taken / bytesPerMs - performance.now()))
    },
  })
  return { out, sizes, got: () => Buffer.concat(parts) }
}

const KiB = 1024
t.test('a client slower than the disk but steady gets larger reads once it has taken 4 MiB', async t => {
  // 40 MB/s: every write is still in flight when the next read is done, which once kept such a client on 64 KiB for good
  const fh = await open(path, 'r')
  const client = pacedClient(40_000)
  t.equal(await copyRange(fh, 0, bytes.length, client.out), bytes.length)
  await fh.close()
  t.equal(sha(client.got()), sha(bytes))
  // 64 writes make 4 MiB; the 65th was read ahead while the 64th was in flight
  const later = client.sizes.slice(65, -1)
  t.ok(later.length > 0 && later.every(n => n === 256 * KiB), `after 4 MiB in 64 KiB writes, 256 KiB ones (sizes in turn: ${client.sizes.join(' ')})`)
})

t.test('a client below 16 MB/s stays on 64 KiB reads', async t => {
  const fh = await open(path, 'r')
  const client = pacedClient(8_000)
  t.equal(await copyRange(fh, 0, 6 * 1024 * KiB, client.out), 6 * 1024 * KiB)
  await fh.close()
  t.ok(client.got().equals(bytes.subarray(0, 6 * 1024 * KiB)))
  t.same([...new Set(client.sizes)], [64 * KiB], 'every write 64 KiB')
})
