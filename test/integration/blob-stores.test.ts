// One contract for every blob store: the filesystem, S3 (against s3rver, a
// real S3 server) and GCS (against the JSON API server in test/helpers).
// Bytes, sizes, ranges, listing, deletion, and what an outage leaves behind.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { collect } from '../../src/io/body.ts'
import { StoreError } from '../../src/store/errors.ts'
import { parseDigest, type Digest } from '../../src/oci/reference.ts'
import type { BlobStore } from '../../src/store/blob-store.ts'
import { FsBlobStore } from '../../src/store/fs-blob-store.ts'
import { GcsBlobStore } from '../../src/store/gcs-blob-store.ts'
import { S3BlobStore } from '../../src/store/s3-blob-store.ts'
import { startGcsServer } from '../helpers/gcs-server.ts'
import { startS3Server } from '../helpers/s3-server.ts'

interface Subject {
  store: BlobStore
  /** Make the service unreachable, then reachable again (same address). */
  down?: () => Promise<void>
  up?: () => Promise<void>
}

const root = await mkdtemp(join(tmpdir(), 'ferry-stores-'))
t.teardown(() => rm(root, { recursive: true, force: true }))

const subjects: Record<string, () => Promise<Subject>> = {
  fs: async () => {
    // down: the store's folder is replaced by a file, so every path under it fails (ENOTDIR); up: put back
    const path = join(root, 'fs')
    return {
      store: new FsBlobStore(path),
      down: async () => { await rename(path, `${path}.away`); await writeFile(path, 'not a folder') },
      up: async () => { await rm(path); await rename(`${path}.away`, path) },
    }
  },
  s3: async () => {
    const dir = join(root, 's3')
    let server = await startS3Server(dir)
    const port = server.port
    const store = new S3BlobStore({ bucket: server.bucket, region: 'us-east-1', endpoint: server.endpoint, prefix: 'ferry/', forcePathStyle: true })
    t.teardown(async () => { store.close(); await server.close() })
    return {
      store,
      down: () => server.close(),
      up: async () => { server = await startS3Server(dir, port) },
    }
  },
  gcs: async () => {
    const dir = join(root, 'gcs')
    let server = await startGcsServer(dir)
    const port = Number(new URL(server.url).port)
    const store = new GcsBlobStore({ bucket: 'ferry-test', prefix: 'ferry/', apiEndpoint: server.url, projectId: 'test' })
    t.teardown(() => server.close())
    return {
      store,
      down: () => server.close(),
      up: async () => { server = await startGcsServer(dir, port) },
    }
  },
}

async function blobFile (bytes: Buffer): Promise<{ digest: Digest, path: string }> {
  const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`)
  const path = join(root, `staged-${randomBytes(6).toString('hex')}`)
  await writeFile(path, bytes)
  return { digest, path }
}

for (const [name, make] of Object.entries(subjects)) {
  t.test(`${name} store`, async t => {
    const { store, down, up } = await make()
    // larger than several 5 MiB multipart parts, so S3 uploads it in parts
    const big = randomBytes(20 * 1024 * 1024 + 123)
    const small = Buffer.from('{"a config":true}\n')

    await t.test('a usable store passes the probe', async t => {
      await t.resolves(store.probe())
    })

    await t.test('an absent blob is absent', async t => {
      const d = parseDigest(`sha256:${'0'.repeat(64)}`)
      t.equal(await store.stat(d), undefined)
      t.equal(await store.open(d), undefined)
    })

    const bigBlob = await blobFile(big)
    const smallBlob = await blobFile(small)
    const empty = await blobFile(Buffer.alloc(0))

    await t.test('a committed file becomes the blob, whole and by range', async t => {
      for (const b of [bigBlob, smallBlob, empty]) await store.commitFile(b.digest, b.path)
      t.notOk(existsSync(bigBlob.path), 'the staging file is consumed')
      const info = await store.stat(bigBlob.digest)
      t.equal(info?.size, big.length)
      t.ok(info !== undefined && Math.abs(info.modifiedAt - Date.now()) < 120_000, 'with when it was written')
      t.equal((await store.stat(empty.digest))?.size, 0)

      const open = await store.open(bigBlob.digest)
      t.equal(open?.size, big.length)
      const whole = await collect(open!.body(), big.length + 1)
      t.equal(createHash('sha256').update(whole).digest('hex'), bigBlob.digest.hex, 'whole read hashes to the digest')

      // a range across a 5 MiB part boundary, and the last byte alone
      const start = 5 * 1024 * 1024 - 10
      const part = await collect((await store.open(bigBlob.digest))!.body({ start, end: start + 99 }), 200)
      t.ok(part.equals(big.subarray(start, start + 100)), 'ranged read returns exactly those bytes')
      const last = await collect((await store.open(bigBlob.digest))!.body({ start: big.length - 1, end: big.length - 1 }), 2)
      t.ok(last.equals(big.subarray(big.length - 1)))

      t.ok((await collect((await store.open(smallBlob.digest))!.body(), 1000)).equals(small))
      t.equal((await collect((await store.open(empty.digest))!.body(), 10)).length, 0)
    })

    await t.test('putFile copies a file in and leaves it (another tier\'s copy)', async t => {
      const copy = await blobFile(randomBytes(70_000))
      await store.putFile(copy.digest, copy.path)
      t.ok(existsSync(copy.path), 'the local file stays')
      t.equal((await store.stat(copy.digest))?.size, 70_000)
      await store.delete(copy.digest)
    })

    await t.test('list yields every blob', async t => {
      const seen: string[] = []
      for await (const d of store.list()) seen.push(d.value)
      t.same(seen.sort(), [bigBlob, smallBlob, empty].map(b => b.digest.value).sort())
    })

    await t.test('delete removes; deleting an absent blob is no error', async t => {
      await store.delete(smallBlob.digest)
      t.equal(await store.stat(smallBlob.digest), undefined)
      await store.delete(smallBlob.digest)
      t.ok(await store.stat(bigBlob.digest), 'other blobs stay')
    })

    if (down !== undefined && up !== undefined) {
      await t.test('store down: a clear error, and no half-written blob after', async t => {
        const lost = await blobFile(randomBytes(3 * 1024 * 1024))
        await down()
        const started = Date.now()
        const err = await store.commitFile(lost.digest, lost.path).then(() => undefined, (e: unknown) => e)
        t.ok(err instanceof StoreError, 'a StoreError')
        t.equal((err as StoreError).code, 'STORE_UNAVAILABLE')
        const statErr = await store.stat(bigBlob.digest).then(() => undefined, (e: unknown) => e)
        t.equal((statErr as StoreError)?.code, 'STORE_UNAVAILABLE', 'reads fail the same way')
        const openErr = await store.open(bigBlob.digest).then(() => undefined, (e: unknown) => e)
        t.equal((openErr as StoreError)?.code, 'STORE_UNAVAILABLE', 'and opens')
        const probeErr = await store.probe().then(() => undefined, (e: unknown) => e)
        t.equal((probeErr as StoreError)?.code, 'STORE_UNAVAILABLE', 'and the probe ferry runs at start')
        t.ok(Date.now() - started < 20_000, 'promptly')
        await up()
        t.equal(await store.stat(lost.digest), undefined, 'the failed upload is not visible')
        t.equal((await store.stat(bigBlob.digest))?.size, big.length, 'what was committed is still there')
      })
    }
  })
}

t.test('a bucket that does not exist is named by the probe', async t => {
  const s3 = await startS3Server(join(root, 's3-missing'))
  t.teardown(() => s3.close())
  const gcs = await startGcsServer(join(root, 'gcs-missing'))
  t.teardown(() => gcs.close())
  const stores: [string, BlobStore][] = [
    ['s3', new S3BlobStore({ bucket: 'no-such-bucket', region: 'us-east-1', endpoint: s3.endpoint, prefix: '', forcePathStyle: true })],
    ['gcs', new GcsBlobStore({ bucket: 'no-such-bucket', prefix: '', apiEndpoint: gcs.url, projectId: 'test' })],
  ]
  for (const [name, store] of stores) {
    const err = await store.probe().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof StoreError, `${name}: a StoreError`)
    t.match((err as Error).message, /no-such-bucket.*(NoSuchBucket|does not exist)/, `${name}: it names the bucket and the cause`)
    store.close?.()
  }
})
