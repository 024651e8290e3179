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
    { repositories: ['ghcr.io/acme/*'], tags: ['v*'], peers: ['us-east'], deletes: false },
    { repositories: ['ghcr.io/acme/*'], tags: ['**'], peers: [], deletes: false },
    { repositories: ['docker.io/library/**'], tags: ['**'], peers: ['us-east', 'ap-south'], deletes: false },
  ])
  t.same(rules.peersFor('ghcr.io/acme/api', 'v2'), ['us-east'])
  t.same(rules.peersFor('ghcr.io/acme/api', 'nightly'), [], 'a later rule can say: nowhere')
  t.same(rules.peersFor('ghcr.io/acme/api', undefined), ['us-east'], 'a manifest by digest goes where its repository goes')
  t.same(rules.peersFor('docker.io/library/nginx', 'latest'), ['us-east', 'ap-south'])
  t.same(rules.peersFor('quay.io/other/thing', 'v1'), [], 'no rule: not replicated')
})

t.test('deletes go only where the deciding rule says deletes: true', async t => {
  const rules = new Rules([
    { repositories: ['acme/mirror/**'], tags: ['**'], peers: ['b', 'c'], deletes: true },
    { repositories: ['acme/**'], tags: ['release-*'], peers: ['b'], deletes: true },
    { repositories: ['acme/**'], tags: ['**'], peers: ['b'], deletes: false },
  ])
  t.same(rules.deletesFor('acme/mirror/app', 'v1'), ['b', 'c'])
  t.same(rules.deletesFor('acme/mirror/app', undefined), ['b', 'c'], 'a manifest deleted by digest')
  t.same(rules.deletesFor('acme/app', 'release-1'), ['b'])
  t.same(rules.deletesFor('acme/app', 'v1'), [], 'the deciding rule does not say deletes: the tag stays in b')
  t.same(rules.peersFor('acme/app', 'v1'), ['b'], 'while its pushes go there')
  t.same(rules.deletesFor('other/app', 'v1'), [], 'no rule: nothing goes')
})
