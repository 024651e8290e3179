// Upload sessions on a real disk: the hash kept while appending and the one
// read back from the file agree, a restart (a new process) goes on from the
// file, a wrong digest and an upload past its limit leave nothing behind.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'

import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { UploadSessions, UploadTooLarge } from '../../src/content/uploads.ts'
import { parseDigest } from '../../src/oci/reference.ts'
import { scratchDir } from '../helpers/procs.ts'

const digest = (alg: 'sha256' | 'sha512', b: Buffer) => parseDigest(`${alg}:${createHash(alg).update(b).digest('hex')}`)
const chunks = (b: Buffer, size: number): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size)))

async function finishInto (u: UploadSessions, session: string, d: ReturnType<typeof parseDigest>): Promise<Buffer> {
  let kept = Buffer.alloc(0)
  await u.finish(session, d, async path => { kept = readFileSync(path) })
  return kept
}

t.test('appended in parts, completed: the bytes and their digest, hashed as they came', async t => {
  const root = scratchDir('ferry-uploads-')
  const u = new UploadSessions(root)
  await u.init()
  const bytes = randomBytes(5 * 1024 * 1024 + 3)
  const s = await u.start('acme/app')
  t.equal(await u.append(s, 0, chunks(bytes.subarray(0, 2_000_000), 65_536)), 2_000_000)
  t.equal(await u.append(s, 2_000_000, chunks(bytes.subarray(2_000_000), 65_536)), bytes.length)
  t.same(await finishInto(u, s, digest('sha256', bytes)), bytes)
})

t.test('a restart goes on from the file: the digest is read back from disk', async t => {
  const root = scratchDir('ferry-uploads-')
  const bytes = randomBytes(3 * 1024 * 1024)
  const before = new UploadSessions(root)
  await before.init()
  const s = await before.start('acme/app')
  await before.append(s, 0, chunks(bytes.subarray(0, 1_000_000), 65_536))
  const after = new UploadSessions(root)
  await after.init()
  await after.check(s, 'acme/app')
  t.equal(await after.offset(s), 1_000_000)
  await after.append(s, 1_000_000, chunks(bytes.subarray(1_000_000), 65_536))
  const wrong = await after.finish(s, digest('sha256', randomBytes(10)), async () => {}).then(() => 'taken', (err: Error) => err.constructor.name)
  t.equal(wrong, 'DigestInvalid', 'a digest the bytes do not have is refused')
  t.notOk(existsSync(join(root, s)), 'and the session is dropped')
})

t.test('a sha512 digest, and bytes appended by another process: both read back from the file', async t => {
  const root = scratchDir('ferry-uploads-')
  const a = new UploadSessions(root)
  const b = new UploadSessions(root)
  await a.init()
  const bytes = randomBytes(1024 * 1024)
  const s = await a.start('acme/app')
  await a.append(s, 0, chunks(bytes.subarray(0, 300_000), 65_536))
  await b.append(s, 300_000, chunks(bytes.subarray(300_000, 600_000), 65_536))
  // a's running hash stopped at 300,000: it must not be taken for the file
  await a.append(s, 600_000, chunks(bytes.subarray(600_000), 65_536))
  t.same(await finishInto(a, s, digest('sha256', bytes)), bytes, 'the file\'s digest, not a stale running hash')
  const s2 = await a.start('acme/app')
  await a.append(s2, 0, chunks(bytes, 65_536))
  t.same(await finishInto(a, s2, digest('sha512', bytes)), bytes, 'sha512')
})

t.test('an upload past its limit is dropped whole', async t => {
  const root = scratchDir('ferry-uploads-')
  const u = new UploadSessions(root)
  await u.init()
  const s = await u.start('acme/app')
  const err = await u.append(s, 0, chunks(randomBytes(200_000), 65_536), undefined, 100_000).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof UploadTooLarge)
  t.same(readdirSync(root), [], 'no file is left')
})
