// A file body read as a stream by a slow reader: the bytes must be the
// file's, although the file body reuses its pooled buffers as soon as a
// write is acknowledged.
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'

import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { bodyReadable, fileBody } from '../../src/io/body.ts'
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
