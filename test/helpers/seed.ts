// The standard upstream content most integration tests pull.
import { oneUpstream, startFerry, type Ferry } from './ferry.ts'
import { startRegistry, type Registry } from './registry.ts'
import { artifact, blob, image, index, OCI_INDEX, pushBlob, pushImage, pushManifest, type Blob, type Image } from './images.ts'

export interface Seeded {
  readonly oci: Image            // test/oci:v1
  readonly docker: Image         // test/docker:v1 (Docker schema2)
  readonly amd64: Image          // test/multi: linux/amd64
  readonly arm64: Image          // test/multi: linux/arm64
  readonly multi: Blob           // test/multi:v1, an OCI index of the two
  readonly sbom: { manifest: Blob, config: Blob, layer: Blob } // referrer of oci's manifest
  readonly sig: { manifest: Blob, config: Blob, layer: Blob }  // a second referrer, another artifactType
}

export const SBOM_TYPE = 'application/vnd.example.sbom.v1+json'
export const SIG_TYPE = 'application/vnd.example.signature.v1'

/** The standard upstream, seeded, with one ferry in front of it; `stop` stops both, ferry first. */
export async function startSeededFerry (): Promise<{ upstream: Registry, ferry: Ferry, seeded: Seeded, stop: () => Promise<void> }> {
  const upstream = await startRegistry()
  try {
    const seeded = await seedStandard(upstream.url)
    const ferry = await startFerry({ config: oneUpstream(upstream.url) })
    return { upstream, ferry, seeded, stop: async () => { await ferry.stop(); await upstream.stop() } }
  } catch (err) {
    await upstream.stop()
    throw err
  }
}

export async function seedStandard (registry: string, auth?: string): Promise<Seeded> {
  const oci = await image({ files: { 'etc/hello.txt': 'hello from the oci image\n' } })
  await pushImage(registry, 'test/oci', 'v1', oci, auth)
  const docker = await image({ docker: true, layerCount: 2 })
  await pushImage(registry, 'test/docker', 'v1', docker, auth)
  const amd64 = await image({ arch: 'amd64', files: { 'arch.txt': 'amd64\n' } })
  const arm64 = await image({ arch: 'arm64', files: { 'arch.txt': 'arm64\n' } })
  await pushImage(registry, 'test/multi', undefined, amd64, auth)
  await pushImage(registry, 'test/multi', undefined, arm64, auth)
  const multi = index([amd64, arm64])
  await pushManifest(registry, 'test/multi', 'v1', multi, auth)

  const sbom = artifact(oci.manifest, SBOM_TYPE, '{"packages":[]}')
  const sig = artifact(oci.manifest, SIG_TYPE, 'signature bytes')
  for (const a of [sbom, sig]) {
    await pushBlob(registry, 'test/oci', a.config, auth)
    await pushBlob(registry, 'test/oci', a.layer, auth)
    await pushManifest(registry, 'test/oci', a.manifest.digest, a.manifest, auth)
  }
  // distribution 2.8 has no referrers API: OCI 1.1 clients then maintain the
  // referrers tag schema, an index tagged <alg>-<hex> of the subject
  const referrers = blob(OCI_INDEX, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_INDEX,
    manifests: [sbom, sig].map(a => ({ mediaType: a.manifest.mediaType, digest: a.manifest.digest, size: a.manifest.bytes.length, artifactType: JSON.parse(a.manifest.bytes.toString()).artifactType })),
  })))
  await pushManifest(registry, 'test/oci', oci.manifest.digest.replace(':', '-'), referrers, auth)
  return { oci, docker, amd64, arm64, multi, sbom, sig }
}
