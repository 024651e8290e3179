// What an (air-gapped) site holds, for the connected side to export only
// what it lacks: its repositories with their tags, and the digests of every
// manifest and blob they hold. Digests only: a site of 10,000 images is a
// few megabytes. The connected side may check it came from the site: with
// --key the inventory carries an Ed25519 signature over its content.
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { RegionState } from '../state/region-state.ts'
import type { Progress } from './progress.ts'

export const INVENTORY_FORMAT = 'ferry-inventory/1'

export interface Inventory {
  readonly format: typeof INVENTORY_FORMAT
  readonly region: string
  readonly created: string
  readonly repositories: readonly { readonly name: string, readonly tags: Readonly<Record<string, string>> }[]
  readonly manifests: readonly string[]
  readonly blobs: readonly string[]
  /** base64 Ed25519 signature of the document without this field, when signed. */
  readonly signature?: string
}

export async function takeInventory (state: RegionState, region: string, progress?: Progress): Promise<Inventory> {
  const repositories: { name: string, tags: Record<string, string> }[] = []
  const manifests = new Set<string>()
  const blobs = new Set<string>()
  const names = (await state.links.repositories()).sort()
  progress?.start(names.length)
  for (const name of names) {
    for (const l of await state.links.list(name, 'manifest')) manifests.add(l.digest)
    for (const l of await state.links.list(name, 'blob')) blobs.add(l.digest)
    const tags: Record<string, string> = {}
    for (const tag of (await state.tags.list(name)).sort()) {
      const entry = (await state.tags.get(name, tag))[0]
      if (entry !== undefined) tags[tag] = entry.digest
    }
    repositories.push({ name, tags })
    progress?.imageDone()
  }
  progress?.stop()
  return { format: INVENTORY_FORMAT, region, created: new Date().toISOString(), repositories, manifests: [...manifests].sort(), blobs: [...blobs].sort() }
}

const payload = (inv: Inventory): Buffer => {
  const { signature: _, ...rest } = inv
  return Buffer.from(JSON.stringify(rest))
}

export async function signInventory (inv: Inventory, keyFile: string): Promise<Inventory> {
  const key = createPrivateKey(await readFile(keyFile))
  return { ...inv, signature: sign(null, payload(inv), key).toString('base64') }
}

export class InventoryError extends Error {
  constructor (message: string) { super(message); this.name = 'InventoryError' }
}

/** The inventory in `file`; with `publicKeyFile`, only if its signature verifies. */
export async function readInventory (file: string, publicKeyFile?: string): Promise<Inventory> {
  let inv: Inventory
  try {
    inv = JSON.parse(await readFile(file, 'utf8')) as Inventory
  } catch (err) {
    throw new InventoryError(`${file}: not an inventory (${(err as Error).message})`)
  }
  if (inv.format !== INVENTORY_FORMAT || !Array.isArray(inv.manifests) || !Array.isArray(inv.blobs)) throw new InventoryError(`${file}: not a ${INVENTORY_FORMAT} inventory`)
  if (publicKeyFile !== undefined) {
    const key = createPublicKey(await readFile(publicKeyFile))
    if (inv.signature === undefined || !verify(null, payload(inv), key, Buffer.from(inv.signature, 'base64'))) {
      throw new InventoryError(`${file}: its signature does not verify with ${publicKeyFile}`)
    }
  }
  return inv
}
