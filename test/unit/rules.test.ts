// Replication rules: which peers an event goes to.
import t from 'tap'
import { globToRegExp } from '../../src/common/glob.ts'
import { Rules } from '../../src/replicate/rules.ts'

t.test('globs: * stays in a path segment, ** crosses them, the rest is literal', async t => {
  t.ok(globToRegExp('library/*').test('library/nginx'))
  t.notOk(globToRegExp('library/*').test('library/nginx/extra'))
  t.ok(globToRegExp('docker.io/**').test('docker.io/library/nginx'))
  t.notOk(globToRegExp('docker.io/**').test('dockerXio/library/nginx'), 'a dot is a dot')
  t.ok(globToRegExp('v*').test('v1.2.3'))
  t.notOk(globToRegExp('v*').test('latest'))
  t.ok(globToRegExp('**').test('anything/at/all'))
})

t.test('the first rule whose repositories and tags match decides; none: not replicated', async t => {
  const rules = new Rules([
    { repositories: ['ghcr.io/acme/*'], tags: ['v*'], peers: ['us-east'] },
    { repositories: ['ghcr.io/acme/*'], tags: ['**'], peers: [] },
    { repositories: ['docker.io/library/**'], tags: ['**'], peers: ['us-east', 'ap-south'] },
  ])
  t.same(rules.peersFor('ghcr.io/acme/api', 'v2'), ['us-east'])
  t.same(rules.peersFor('ghcr.io/acme/api', 'nightly'), [], 'a later rule can say: nowhere')
  t.same(rules.peersFor('ghcr.io/acme/api', undefined), ['us-east'], 'a manifest by digest goes where its repository goes')
  t.same(rules.peersFor('docker.io/library/nginx', 'latest'), ['us-east', 'ap-south'])
  t.same(rules.peersFor('quay.io/other/thing', 'v1'), [], 'no rule: not replicated')
})
