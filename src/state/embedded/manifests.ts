// Manifest records as files: <root>/manifests/<alg>/<xx>/<hex>, a JSON
// record (a record written before sizes were kept is its bare media type).
import { join } from 'node:path'
import type { ManifestRecord, Manifests } from '../region-state.ts'
import type { StateFiles } from './files.ts'
import { boundedCache } from '../../common/bounded-cache.ts'

export class EmbeddedManifests implements Manifests {
  private readonly root: string
  private readonly files: StateFiles
  private readonly memory = boundedCache<string, ManifestRecord>(200_000)

  constructor (root: string, files: StateFiles) {
    this.root = join(root, 'manifests')
    this.files = files
  }

  private path (digest: string): string {
    const [alg, hex] = digest.split(':') as [string, string]
    return join(this.root, alg, hex.slice(0, 2), hex)
  }

  async get (digest: string): Promise<ManifestRecord | undefined> {
    const hit = this.memory.get(digest)
    if (hit !== undefined) return hit
    const text = await this.files.readText(this.path(digest))
    // absence is not remembered: another writer (a fill, a push) may add it any moment
    if (text === undefined || text === '') return undefined
    let record: ManifestRecord | undefined
    if (text.startsWith('{')) {
      try { record = JSON.parse(text) as ManifestRecord } catch { return undefined }
    } else {
      record = { mediaType: text, size: 0 }
    }
    this.memory.set(digest, record)
    return record
  }

  async put (digest: string, record: ManifestRecord): Promise<void> {
    this.memory.set(digest, record)
    await this.files.write(this.path(digest), JSON.stringify(record))
  }

  async remove (digest: string): Promise<void> {
    this.memory.delete(digest)
    await this.files.remove(this.path(digest))
  }
}
