// A fill serves its readers from the chunks in hand while they keep up and
// from the staging file once they fall behind, and writes that file behind
// the stream. Whatever path a reader's bytes take, they must be the blob's,
// the file committed must hash to the digest, and a blob that does not
// verify never gives anyone its last byte.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'

import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import t from 'tap'
import { Fill } from '../../src/blobs/fill.ts'
import { bytesKeptEverywhere, RecentBytes } from '../../src/blobs/recent-bytes.ts'
import { bytesUnwrittenEverywhere } from '../../src/blobs/staging-writer.ts'
import type { OpenedBlob } from '../../src/blobs/source.ts'
import { arrivingBody, type Body } from '../../src/io/body.ts'
import { parseDigest } from '../../src/oci/reference.ts'
import { scratchDir } from '../helpers/procs.ts'

const dir = scratchDir('ferry-fill-')
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const bytes = randomBytes(40 * 1024 * 1024 + 7)
const digest = parseDigest(`sha256:${sha(bytes)}`)
let n = 0

/** Fresh 64 KiB chunks, as a socket delivers them. */
function arriving (b: Buffer): OpenedBlob {
  const chunks: Buffer[] = []
  for (let i = 0; i < b.length; i += 65536) chunks.push(Buffer.from(b.subarray(i, i + 65536)))
  return { size: b.length, start: 0, length: b.length, body: arrivingBody(Readable.from(chunks)) }
}

/** One buffer, refilled for every chunk, as a file body with pooled buffers does. */
function reusing (b: Buffer): OpenedBlob {
  const body: Body = {
    async writeTo (out) {
      const buf = Buffer.alloc(100_000)
      for (let i = 0; i < b.length; i += buf.length) {
        const part = b.subarray(i, i + buf.length)
        part.copy(buf)
        await new Promise<void>((resolve, reject) => out.write(buf.subarray(0, part.length), err => err ? reject(err) : resolve()))
      }
      return b.length
    },
    discard () {},
  }
  return { size: b.length, start: 0, length: b.length, body }
}

/** A reader that copies what it gets, waiting `delayMs` after every chunk (so it falls behind what the fill keeps). */
function collector (delayMs: number): { out: Writable, got: () => Buffer } {
  const parts: Buffer[] = []
  const out = new Writable({
    highWaterMark: 1,
    write (chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk))
      if (delayMs > 0) setTimeout(cb, delayMs); else cb()
    },
  })
  return { out, got: () => Buffer.concat(parts) }
}

async function runFill (source: OpenedBlob, expect = digest): Promise<{ fill: Fill, committed: () => Buffer | undefined }> {
  const fill = new Fill(expect, join(dir, `staging-${n++}`))
  let committed: Buffer | undefined
  void fill.run(source, {
    reopen: async () => { throw new Error('no second attempt here') },
    attempts: 0,
    backoffMs: 1,
    commit: async path => { committed = readFileSync(path) },
    onBytes: () => {},
    onResume: () => {},
  })
  return { fill, committed: () => committed }
}

t.test('readers at every pace get the blob; the committed file hashes to the digest', async t => {
  const { fill, committed } = await runFill(arriving(bytes))
  const fast = collector(0)
  const slow = collector(3)
  const readers = [fill.reader().writeTo(fast.out), fill.reader().writeTo(slow.out)]
  const late = collector(0)
  await new Promise(resolve => setTimeout(resolve, 20))
  readers.push(fill.reader({ start: 1000, end: bytes.length - 1 }).writeTo(late.out))
  await Promise.all(readers)
  await fill.done
  t.equal(fill.state, 'verified')
  t.equal(sha(fast.got()), sha(bytes), 'a reader that keeps up')
  t.equal(sha(slow.got()), sha(bytes), 'a reader that falls behind what is kept in memory')
  t.ok(late.got().equals(bytes.subarray(1000)), 'a range, joined late')
  t.equal(sha(committed()!), digest.hex, 'the staging file holds the blob')
})

t.test('a source that reuses its buffers: the fill keeps copies', async t => {
  const { fill, committed } = await runFill(reusing(bytes))
  const slow = collector(2)
  await fill.reader().writeTo(slow.out)
  await fill.done
  t.equal(sha(slow.got()), sha(bytes))
  t.equal(sha(committed()!), digest.hex)
})

t.test('bytes that do not verify: no reader gets the last byte, nothing is committed', async t => {
  const wrong = Buffer.from(bytes)
  wrong[wrong.length - 3] ^= 1
  const { fill, committed } = await runFill(arriving(wrong))
  const reader = collector(0)
  await t.rejects(fill.reader().writeTo(reader.out))
  await fill.done
  t.equal(fill.state, 'failed')
  t.equal(fill.error?.message, 'the source sent a blob whose digest does not match')
  t.ok(reader.got().length < wrong.length, `the reader got ${reader.got().length} of ${wrong.length} bytes`)
  t.equal(committed(), undefined)
})

t.test('many fills at once keep a bounded total in memory, and give it all back', async t => {
  const blob = bytes.subarray(0, 16 * 1024 * 1024)
  const d = parseDigest(`sha256:${sha(blob)}`)
  const chunks: Buffer[] = []
  for (let i = 0; i < blob.length; i += 65536) chunks.push(blob.subarray(i, i + 65536)) // shared: nobody writes into them
  let most = 0
  const sample = setInterval(() => { most = Math.max(most, bytesKeptEverywhere()) }, 1)
  const fills = await Promise.all(Array.from({ length: 24 }, () => runFill({ size: blob.length, start: 0, length: blob.length, body: arrivingBody(Readable.from(chunks)) }, d)))
  await Promise.all(fills.map(f => f.fill.done))
  clearInterval(sample)
  t.ok(fills.every(f => f.fill.state === 'verified' && f.committed() !== undefined), 'every fill verified and committed')
  t.ok(most <= 36 * 1024 * 1024, `at most ${(most / 1024 / 1024).toFixed(1)} MiB kept at once by 24 fills (each would keep 2 MiB and its unwritten bytes alone)`)
  t.equal(bytesKeptEverywhere(), 0, 'nothing kept once they ended')
  t.equal(bytesUnwrittenEverywhere(), 0, 'nothing left unwritten')
})

t.test('RecentBytes: slices across chunks, nothing before what is kept', async t => {
  const r = new RecentBytes()
  r.add(Buffer.from('abc'))
  r.add(Buffer.from('defg'))
  r.add(Buffer.from('hi'))
  t.equal(Buffer.concat(r.slices(1, 9, 100)!).toString(), 'bcdefghi')
  t.equal(Buffer.concat(r.slices(2, 6, 100)!).toString(), 'cdef', 'not at or past the limit')
  t.equal(Buffer.concat(r.slices(4, 9, 3)!).toString(), 'efg', 'at most max')
  r.dropBefore(5)
  t.equal(r.start, 3, 'a chunk that ends after the offset stays')
  t.equal(r.slices(2, 9, 100), undefined, 'before what is kept: read the file')
  t.equal(Buffer.concat(r.slices(3, 9, 100)!).toString(), 'defghi')
  t.equal(r.slices(9, 9, 100), undefined, 'nothing past the end')
  r.clear()
  t.equal(r.start, 9)
})
