/**
 * T-B-4 (shared spec federation-kubernetes-kv-references.md §6): docs/federation.md "Kubernetes with the stock Azure
 * Workload Identity webhook" against a port of the webhook's pod mutation (test/support/awi-webhook.ts, AWI v1.6.0).
 *
 * The ServiceAccount and Pod are parsed out of the section's ```yaml block, so the test fails when the docs drift.
 * Each row mutates a variant of the doc's pod as the stock webhook would and checks, container by container, that
 * the environment an unchanged `DefaultAzureCredential` reads points at openmsi: `AZURE_AUTHORITY_HOST` the pod set
 * itself (the webhook's `https://login.microsoftonline.com/` is not added over it), `AZURE_TENANT_ID=adfs` from the
 * service-account annotation, `AZURE_CLIENT_ID` from the client-id annotation, `AZURE_FEDERATED_TOKEN_FILE` inside a
 * mounted projected service-account token with audience `api://AzureADTokenExchange`, and the CA file inside a
 * mounted volume. That SDKs reach openmsi from exactly these variables is test/clients/sdk/workload-identity.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../support/child-process.js';
import {
  ClientIDAnnotation,
  DefaultAudience,
  PublicCloudAuthorityHost,
  SkipContainersAnnotation,
  TenantIDAnnotation,
  UseWorkloadIdentityLabel,
  mutatePod,
  selectedByWebhook,
  type Container,
  type Pod,
  type ServiceAccount,
  type Volume,
  type WebhookConfig,
} from '../../support/awi-webhook.js';

const DOC = join(repoRoot, 'docs/federation.md');
const SECTION = '## Kubernetes with the stock Azure Workload Identity webhook';
const ENV_SECTION = '## Unchanged SDKs: the environment';
/** The webhook deployment's own settings: a real cluster tenant, public cloud. The SA annotation must win. */
const WEBHOOK: WebhookConfig = { tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47' };

/** The fenced blocks of `lang` in the `##` section that starts with `heading`. */
function blocks(markdown: string, heading: string, lang: string): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/federation.md has no section "${heading}"`);
  const rest = markdown.slice(start + heading.length + 2);
  const end = rest.search(/^## /m);
  const section = end >= 0 ? rest.slice(0, end) : rest;
  return [...section.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]!);
}

const markdown = readFileSync(DOC, 'utf8');
const yamlBlocks = blocks(markdown, SECTION, 'yaml');
const shBlocks = blocks(markdown, SECTION, 'sh');
const docs = yamlBlocks.flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as { kind?: string }));
const docSa = docs.find((d) => d.kind === 'ServiceAccount') as ServiceAccount | undefined;
const docPod = docs.find((d) => d.kind === 'Pod') as Pod | undefined;

/** The doc's environment block (`NAME=value   # comment` lines). */
const docEnv = new Map(
  blocks(markdown, ENV_SECTION, 'sh')
    .join('\n')
    .split('\n')
    .map((l) => /^([A-Z_]+)=(\S+)/.exec(l))
    .filter((m) => m !== null)
    .map((m) => [m[1]!, m[2]!]),
);

function envOf(c: Container): Map<string, string | undefined> {
  const names = (c.env ?? []).map((e) => e.name);
  assert.equal(new Set(names).size, names.length, `container ${c.name}: a variable set twice: ${names.join(', ')}`);
  return new Map((c.env ?? []).map((e) => [e.name, e.value]));
}

/** The volume mounted in `c` whose mount path contains `file`, and the file's path inside it. */
function mountedVolume(pod: Pod, c: Container, file: string): { volume: Volume; sub: string } {
  const mount = (c.volumeMounts ?? []).find((m) => file.startsWith(m.mountPath.replace(/\/?$/, '/')));
  assert.ok(mount, `container ${c.name}: ${file} is in no mounted volume`);
  const volume = (pod.spec.volumes ?? []).find((v) => v.name === mount.name);
  assert.ok(volume, `container ${c.name}: mount ${mount.name} has no volume`);
  return { volume, sub: posix.relative(mount.mountPath, file) };
}

interface Expect {
  authorityHost: string;
  tenantId: string;
  clientId: string;
}

/** What `DefaultAzureCredential` in `c` would use, checked against `want`, with the token file and CA file mounted. */
function assertReaches(pod: Pod, c: Container, want: Expect) {
  const env = envOf(c);
  assert.equal(env.get('AZURE_AUTHORITY_HOST'), want.authorityHost, `container ${c.name}: AZURE_AUTHORITY_HOST`);
  assert.equal(env.get('AZURE_TENANT_ID'), want.tenantId, `container ${c.name}: AZURE_TENANT_ID`);
  assert.equal(env.get('AZURE_CLIENT_ID'), want.clientId, `container ${c.name}: AZURE_CLIENT_ID`);
  const tokenFile = env.get('AZURE_FEDERATED_TOKEN_FILE');
  assert.ok(tokenFile, `container ${c.name}: no AZURE_FEDERATED_TOKEN_FILE`);
  const { volume, sub } = mountedVolume(pod, c, tokenFile);
  const projection = (
    volume as { projected?: { sources?: { serviceAccountToken?: { path: string; audience: string; expirationSeconds: number } }[] } }
  ).projected?.sources?.find((s) => s.serviceAccountToken?.path === sub)?.serviceAccountToken;
  assert.ok(projection, `container ${c.name}: ${tokenFile} is not a projected service-account token`);
  assert.equal(projection.audience, DefaultAudience);
  assert.ok(projection.expirationSeconds >= 3600 && projection.expirationSeconds <= 86400);
  const ca = env.get('NODE_EXTRA_CA_CERTS');
  assert.ok(ca, `container ${c.name}: no NODE_EXTRA_CA_CERTS (openmsi's CA)`);
  const caVolume = mountedVolume(pod, c, ca).volume as { configMap?: { name: string } };
  assert.ok(caVolume.configMap, `container ${c.name}: the CA is not from a ConfigMap`);
}

function untouched(before: Container, after: Container) {
  assert.deepEqual(after, before, `container ${before.name} (skipped) was changed`);
}

describe('docs/federation.md Kubernetes manifests under the stock Azure Workload Identity webhook (T-B-4)', () => {
  it('the section has a ServiceAccount and a Pod the webhook selects, for that service account', () => {
    assert.ok(docSa, 'no ServiceAccount in the section');
    assert.ok(docPod, 'no Pod in the section');
    assert.equal(docPod.spec.serviceAccountName, docSa.metadata.name);
    assert.equal(docPod.metadata.namespace, docSa.metadata.namespace);
    assert.ok(selectedByWebhook(docPod), `the pod lacks the label ${UseWorkloadIdentityLabel}: "true" (the webhook's objectSelector)`);
    assert.equal(docSa.metadata.annotations?.[TenantIDAnnotation], 'adfs');
    assert.ok(docSa.metadata.annotations?.[ClientIDAnnotation]);
  });

  it("openmsi's federated credential matches the pod's service-account token (subject, audience)", () => {
    const create = shBlocks.join('\n').replace(/\\\n\s*/g, ' ');
    const m = /federated-credential create .*--subject (\S+)/.exec(create);
    assert.ok(m, 'no `federated-credential create --subject` in the section');
    assert.equal(m[1], `system:serviceaccount:${docSa!.metadata.namespace}:${docSa!.metadata.name}`);
    // No --audiences: the default, which the doc states is the webhook's audience.
    assert.doesNotMatch(create, /--audiences/);
    assert.match(markdown, /--audiences defaults to api:\/\/AzureADTokenExchange/);
  });

  const docHost = () => docPod!.spec.containers[0]!.env!.find((e) => e.name === 'AZURE_AUTHORITY_HOST')!.value!;
  const expect = (): Expect => ({ authorityHost: docHost(), tenantId: 'adfs', clientId: docSa!.metadata.annotations![ClientIDAnnotation]! });
  const withOpenmsiEnv = (name: string, extra: Container['env'] = []): Container => ({
    name,
    image: 'tool',
    env: [...structuredClone(docPod!.spec.containers[0]!.env!), ...extra],
    volumeMounts: structuredClone(docPod!.spec.containers[0]!.volumeMounts!),
  });

  const rows: {
    name: string;
    pod: () => Pod;
    sa?: () => ServiceAccount;
    check: (before: Pod, after: Pod) => void;
  }[] = [
    {
      name: "the doc's pod: every variable the SDK needs, the pod's AZURE_AUTHORITY_HOST survives",
      pod: () => docPod!,
      check: (before, after) => {
        assert.equal(after.spec.containers.length, 1);
        const c = after.spec.containers[0]!;
        assertReaches(after, c, expect());
        assert.notEqual(envOf(c).get('AZURE_AUTHORITY_HOST'), PublicCloudAuthorityHost);
        // The pod's own variables stay first and unchanged; the webhook appends.
        assert.deepEqual(c.env!.slice(0, before.spec.containers[0]!.env!.length), before.spec.containers[0]!.env);
        // The doc's "Unchanged SDKs: the environment" lists exactly these variables and values.
        for (const [k, v] of docEnv) {
          const got = envOf(c).get(k);
          if (k === 'AZURE_CLIENT_ID') assert.ok(got);
          else assert.equal(got, v, `docs "Unchanged SDKs" ${k} vs the mutated pod`);
        }
        assert.deepEqual([...envOf(c).keys()].sort(), [...docEnv.keys()].sort());
      },
    },
    {
      name: 'an init container that sets the same variables is mutated alike',
      pod: () => ({ ...docPod!, spec: { ...docPod!.spec, initContainers: [withOpenmsiEnv('migrate')] } }),
      check: (_, after) => {
        for (const c of [...after.spec.initContainers!, ...after.spec.containers]) assertReaches(after, c, expect());
      },
    },
    {
      name: 'a container that does not set AZURE_AUTHORITY_HOST gets Microsoft\u2019s (each container must set its own)',
      pod: () => ({ ...docPod!, spec: { ...docPod!.spec, initContainers: [{ name: 'bare', image: 'tool' }] } }),
      check: (_, after) => {
        const env = envOf(after.spec.initContainers![0]!);
        assert.equal(env.get('AZURE_AUTHORITY_HOST'), PublicCloudAuthorityHost);
        assert.equal(env.get('AZURE_TENANT_ID'), 'adfs');
        assertReaches(after, after.spec.containers[0]!, expect());
      },
    },
    {
      name: 'a container that pre-sets AZURE_CLIENT_ID keeps it (a second identity)',
      pod: () => ({
        ...docPod!,
        spec: { ...docPod!.spec, containers: [...docPod!.spec.containers, withOpenmsiEnv('worker', [{ name: 'AZURE_CLIENT_ID', value: 'other-client' }])] },
      }),
      check: (_, after) => {
        assertReaches(after, after.spec.containers[0]!, expect());
        assertReaches(after, after.spec.containers[1]!, { ...expect(), clientId: 'other-client' });
      },
    },
    {
      name: 'a pre-set AZURE_AUTHORITY_HOST from a ConfigMap (valueFrom) is not overridden either',
      pod: () => {
        const pod = structuredClone(docPod!);
        const env = pod.spec.containers[0]!.env!;
        const i = env.findIndex((e) => e.name === 'AZURE_AUTHORITY_HOST');
        env[i] = { name: 'AZURE_AUTHORITY_HOST', valueFrom: { configMapKeyRef: { name: 'openmsi', key: 'authority-host' } } };
        return pod;
      },
      check: (_, after) => {
        const env = after.spec.containers[0]!.env!;
        assert.deepEqual(
          env.filter((e) => e.name === 'AZURE_AUTHORITY_HOST'),
          [{ name: 'AZURE_AUTHORITY_HOST', valueFrom: { configMapKeyRef: { name: 'openmsi', key: 'authority-host' } } }],
        );
      },
    },
    {
      name: 'skip-containers: listed containers (init and regular, `;`-separated, spaces trimmed) are left alone',
      pod: () => ({
        ...docPod!,
        metadata: { ...docPod!.metadata, annotations: { [SkipContainersAnnotation]: 'istio-proxy; istio-init' } },
        spec: {
          ...docPod!.spec,
          initContainers: [{ name: 'istio-init', image: 'proxyv2' }, withOpenmsiEnv('migrate')],
          containers: [...docPod!.spec.containers, { name: 'istio-proxy', image: 'proxyv2' }],
        },
      }),
      check: (before, after) => {
        untouched(before.spec.initContainers![0]!, after.spec.initContainers![0]!);
        untouched(before.spec.containers[1]!, after.spec.containers[1]!);
        assertReaches(after, after.spec.initContainers![1]!, expect());
        assertReaches(after, after.spec.containers[0]!, expect());
      },
    },
    {
      name: 'without the tenant-id annotation the webhook\u2019s own tenant is injected (the annotation is needed)',
      pod: () => docPod!,
      sa: () => {
        const sa = structuredClone(docSa!);
        delete sa.metadata.annotations![TenantIDAnnotation];
        return sa;
      },
      check: (_, after) => assert.equal(envOf(after.spec.containers[0]!).get('AZURE_TENANT_ID'), WEBHOOK.tenantId),
    },
    {
      name: 'token expiration from the SA annotation; out of range is an admission error',
      pod: () => docPod!,
      sa: () => {
        const sa = structuredClone(docSa!);
        sa.metadata.annotations!['azure.workload.identity/service-account-token-expiration'] = '86400';
        return sa;
      },
      check: (_, after) => {
        const v = after.spec.volumes!.at(-1) as unknown as { projected: { sources: { serviceAccountToken: { expirationSeconds: number } }[] } };
        assert.equal(v.projected.sources[0]!.serviceAccountToken.expirationSeconds, 86400);
        const bad = structuredClone(docSa!);
        bad.metadata.annotations!['azure.workload.identity/service-account-token-expiration'] = '600';
        assert.throws(() => mutatePod(docPod!, bad, WEBHOOK), /token expiration 600 not valid/);
      },
    },
  ];

  for (const row of rows) {
    it(row.name, () => {
      const before = row.pod();
      const frozen = structuredClone(before);
      const after = mutatePod(before, row.sa?.() ?? docSa!, WEBHOOK);
      assert.deepEqual(before, frozen, 'the input pod was changed');
      // The doc's own volumes stay; exactly one projected token volume is added.
      assert.equal(after.spec.volumes!.length, (before.spec.volumes ?? []).length + 1);
      row.check(before, after);
    });
  }

  it('a pod without the label is not mutated at all (the label goes on the pod, not the service account)', () => {
    const pod = structuredClone(docPod!);
    delete pod.metadata.labels![UseWorkloadIdentityLabel];
    assert.equal(selectedByWebhook(pod), false);
  });
});
