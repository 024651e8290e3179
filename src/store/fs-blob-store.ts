// Blobs as files: <root>/<algorithm>/<first two hex>/<hex>. A blob appears
// only by rename of a verified file, so a reader never sees a partial blob.
import { copyFile, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileBody } from '../io/body.ts'
import type { Digest } from '../oci/reference.ts'
import type { ByteRange } from '../oci/range.ts'
import type { BlobInfo, BlobRead, BlobStore } from './blob-store.ts'


export class FsBlobStore implements BlobStore {
  readonly root: string
  constructor (root: string) { this.root = root }

  path (digest: Digest): string {
    return join(this.root, digest.algorithm, digest.hex.slice(0, 2), digest.hex)
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.path(digest))
      return { size: s.size }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async read (digest: Digest, range?: ByteRange): Promise<BlobRead | undefined> {
    let fh
    try {
      fh = await open(this.path(digest), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const { size } = await fh.stat()
      const start = range?.start ?? 0
      const end = range === undefined ? size - 1 : Math.min(range.end, size - 1)
      if (size === 0 || end < start) return { size: 0, body: fileBody(fh, 0, -1) }
      // the body owns the handle from here and closes it when written or discarded
      return { size: end - start + 1, body: fileBody(fh, start, end) }
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  async commitFile (digest: Digest, localPath: string): Promise<void> {
    const target = this.path(digest)
    await mkdir(dirname(target), { recursive: true })
    try {
      await rename(localPath, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
      // staging on another filesystem: copy beside the target, then rename
      const beside = `${target}.${process.pid}.${Date.now()}.tmp`
      try {
        await copyFile(localPath, beside)
        await rename(beside, target)
      } finally {
        await rm(beside, { force: true })
        await unlink(localPath).catch(() => {})
      }
    }
  }

  async delete (digest: Digest): Promise<void> {
    await rm(this.path(digest), { force: true })
  }

  async * list (): AsyncIterable<Digest> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const prefixes = await readdir(join(this.root, algorithm)).catch(() => [] as string[])
      for (const prefix of prefixes) {
        const names = await readdir(join(this.root, algorithm, prefix)).catch(() => [] as string[])
        for (const hex of names) {
          // skip copies in flight (<hex>.<pid>.<time>.tmp) and anything else that is not a blob
          if (hex.length === (algorithm === 'sha256' ? 64 : 128) && /^[a-f0-9]+$/.test(hex)) yield { algorithm, hex, value: `${algorithm}:${hex}` }
        }
      }
    }
  }
}
