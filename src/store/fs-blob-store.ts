// Blobs as files: <root>/<algorithm>/<first two hex>/<hex>. A blob appears
// only by rename of a verified file, so a reader never sees a partial blob.
import { constants } from 'node:fs'
import { access, copyFile, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileBody } from '../io/body.ts'
import type { Digest } from '../oci/reference.ts'
import type { BlobInfo, BlobStore, OpenBlob } from './blob-store.ts'
import { StoreError } from './errors.ts'

/** Absent is an answer; any other failure of the disk is the store's (StoreError), as in every store. */
async function orStoreError<T> (operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    throw err instanceof StoreError ? err : new StoreError(operation, err)
  }
}

const absent = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT'

export class FsBlobStore implements BlobStore {
  readonly root: string
  /** Folders known to exist: a commit costs a rename, not a mkdir and a rename. */
  private readonly made = new Set<string>()
  constructor (root: string) { this.root = root }

  path (digest: Digest): string {
    return join(this.root, digest.algorithm, digest.hex.slice(0, 2), digest.hex)
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.path(digest))
      return { size: s.size, modifiedAt: s.mtimeMs }
    } catch (err) {
      if (absent(err)) return undefined
      throw new StoreError('stat', err)
    }
  }

  async open (digest: Digest): Promise<OpenBlob | undefined> {
    let fh
    try {
      fh = await open(this.path(digest), 'r')
    } catch (err) {
      if (absent(err)) return undefined
      throw new StoreError('read', err)
    }
    let size: number
    try {
      size = (await fh.stat()).size
    } catch (err) {
      await fh.close()
      throw new StoreError('read', err)
    }
    const handle = fh
    return {
      size,
      // the body owns the handle from here and closes it when written or discarded
      body: range => fileBody(handle, range?.start ?? 0, range?.end ?? size - 1),
      close: () => { void handle.close().catch(() => {}) },
    }
  }

  async commitFile (digest: Digest, localPath: string): Promise<void> {
    await orStoreError('write', () => this.moveIn(digest, localPath))
  }

  private async moveIn (digest: Digest, localPath: string): Promise<void> {
    const target = this.path(digest)
    const folder = dirname(target)
    if (!this.made.has(folder)) {
      await mkdir(folder, { recursive: true })
      this.made.add(folder)
    }
    try {
      await rename(localPath, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
      // staging on another filesystem: copy beside the target, then rename
      try {
        await this.copyIn(digest, localPath)
      } finally {
        await unlink(localPath).catch(() => {})
      }
    }
  }

  async putFile (digest: Digest, localPath: string): Promise<void> {
    await orStoreError('write', () => this.copyIn(digest, localPath))
  }

  private async copyIn (digest: Digest, localPath: string): Promise<void> {
    const target = this.path(digest)
    if (!this.made.has(dirname(target))) await mkdir(dirname(target), { recursive: true })
    const beside = `${target}.${process.pid}.${Date.now()}.tmp`
    try {
      await copyFile(localPath, beside)
      await rename(beside, target)
    } finally {
      await rm(beside, { force: true })
    }
  }

  async delete (digest: Digest): Promise<void> {
    await orStoreError('delete', () => rm(this.path(digest), { force: true }))
  }

  async probe (): Promise<void> {
    await orStoreError('use its folder', async () => {
      await mkdir(this.root, { recursive: true })
      await access(this.root, constants.R_OK | constants.W_OK | constants.X_OK)
    })
  }

  async * list (): AsyncIterable<Digest> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const prefixes = await readdir(join(this.root, algorithm)).catch((err: unknown) => {
        if (absent(err)) return [] as string[]
        throw new StoreError('list', err)
      })
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
