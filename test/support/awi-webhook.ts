/**
 * A model of a third-party component, not product code: the pod mutation of the stock Azure Workload Identity
 * webhook, ported from Azure/azure-workload-identity v1.6.0 (commit 04d01a2) `pkg/webhook/webhook.go`
 * (`Handle`'s mutation part, `mutateContainers`, `getSkipContainers`, `getServiceAccountTokenExpiration`,
 * `getClientID`, `getTenantID`, `addEnvironmentVariables`, `addProjectedVolumeMount`, `addProjectedVolume`,
 * `buildVolumeName`) and `pkg/webhook/consts.go`.
 *
 * Left out, because openmsi's docs use none of them: the proxy sidecar (`azure.workload.identity/inject-proxy-sidecar`)
 * and the AKS custom token endpoint (`azure.workload.identity/use-<suffix>`; disabled unless the webhook is started
 * with its flags). Selection is the `MutatingWebhookConfiguration`'s `objectSelector` (label
 * `azure.workload.identity/use: "true"` on the pod), modelled by `selectedByWebhook`.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';

export const UseWorkloadIdentityLabel = 'azure.workload.identity/use';
export const ClientIDAnnotation = 'azure.workload.identity/client-id';
export const TenantIDAnnotation = 'azure.workload.identity/tenant-id';
export const ServiceAccountTokenExpiryAnnotation = 'azure.workload.identity/service-account-token-expiration';
export const SkipContainersAnnotation = 'azure.workload.identity/skip-containers';
export const MinServiceAccountTokenExpiration = 3600;
export const MaxServiceAccountTokenExpiration = 86400;
export const DefaultServiceAccountTokenExpiration = 3600;
export const ProjectedVolumeNamePrefix = 'azure-workload-identity-reserved-';
export const TokenFilePath = 'token/azure-identity-token';
export const VolumeMountPath = '/var/run/secrets/azure/wi';
export const DefaultAudience = 'api://AzureADTokenExchange';
/** `azure.PublicCloud.ActiveDirectoryEndpoint` (go-autorest), the webhook's default `AZURE_ENVIRONMENT`. */
export const PublicCloudAuthorityHost = 'https://login.microsoftonline.com/';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
export interface Container {
  name: string;
  env?: EnvVar[];
  volumeMounts?: VolumeMount[];
  [k: string]: unknown;
}
export interface Volume {
  name: string;
  [k: string]: unknown;
}
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface Pod {
  apiVersion?: string;
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: { serviceAccountName?: string; containers: Container[]; initContainers?: Container[]; volumes?: Volume[]; [k: string]: unknown };
}
export interface ServiceAccount {
  apiVersion?: string;
  kind: 'ServiceAccount';
  metadata: ObjectMeta;
}

/** The webhook's configuration (`pkg/config`, `cmd/webhook` flags): the cluster tenant and the authority host. */
export interface WebhookConfig {
  /** `AZURE_TENANT_ID` of the webhook deployment (required there). */
  tenantId: string;
  /** `getAzureAuthorityHost`: public cloud unless `AZURE_ENVIRONMENT` says otherwise. */
  azureAuthorityHost?: string;
  /** `--audience`, default `api://AzureADTokenExchange`. */
  audience?: string;
}

/** The `MutatingWebhookConfiguration` `objectSelector`: the label on the pod (not on the service account). */
export function selectedByWebhook(pod: Pod): boolean {
  return pod.metadata.labels?.[UseWorkloadIdentityLabel] === 'true';
}

/** `buildVolumeName`: the prefix and the sha256 of the pod's name, truncated to 63 characters. */
export function buildVolumeName(podName: string): string {
  const hash = createHash('sha256').update(podName).digest('hex');
  return ProjectedVolumeNamePrefix + hash.slice(0, 63 - ProjectedVolumeNamePrefix.length);
}

function getSkipContainers(pod: Pod): Set<string> | undefined {
  const skip = pod.metadata.annotations?.[SkipContainersAnnotation];
  if (!skip) return undefined;
  return new Set(skip.split(';').map((s) => s.trim()));
}

/** Go's `strconv.ParseInt(s, 10, 64)`, strict. */
function parseInt64(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) throw new Error(`strconv.ParseInt: parsing ${JSON.stringify(s)}: invalid syntax`);
  return Number(s);
}

function getServiceAccountTokenExpiration(pod: Pod, sa: ServiceAccount): number {
  let exp = DefaultServiceAccountTokenExpiration;
  const onPod = pod.metadata.annotations?.[ServiceAccountTokenExpiryAnnotation];
  const onSa = sa.metadata.annotations?.[ServiceAccountTokenExpiryAnnotation];
  if (onPod) exp = parseInt64(onPod);
  else if (onSa) exp = parseInt64(onSa);
  if (exp > MaxServiceAccountTokenExpiration || exp < MinServiceAccountTokenExpiration) {
    throw new Error(`token expiration ${exp} not valid. Expected value to be between 3600 and 86400`);
  }
  return exp;
}

function getTenantID(sa: ServiceAccount, config: WebhookConfig): string {
  const annotations = sa.metadata.annotations ?? {};
  // Go: `if tenantID, ok := sa.Annotations[TenantIDAnnotation]; ok` — present, even if empty, wins.
  if (Object.hasOwn(annotations, TenantIDAnnotation)) return annotations[TenantIDAnnotation]!;
  return config.tenantId;
}

/** `addEnvironmentVariables`: appends each variable the container does not already name, if its value is non-empty. */
export function addEnvironmentVariables(container: Container, clientId: string, tenantId: string, azureAuthorityHost: string): Container {
  const present = new Set((container.env ?? []).map((e) => e.name));
  const desired: EnvVar[] = [
    { name: 'AZURE_CLIENT_ID', value: clientId },
    { name: 'AZURE_TENANT_ID', value: tenantId },
    { name: 'AZURE_FEDERATED_TOKEN_FILE', value: posix.join(VolumeMountPath, TokenFilePath) },
    { name: 'AZURE_AUTHORITY_HOST', value: azureAuthorityHost },
  ];
  const env = [...(container.env ?? [])];
  for (const e of desired) if (!present.has(e.name) && e.value) env.push(e);
  return { ...container, env };
}

/** `addProjectedVolumeMount`: replaces a mount of the same volume name, else appends. */
export function addProjectedVolumeMount(container: Container, volumeName: string): Container {
  const mount: VolumeMount = { name: volumeName, mountPath: VolumeMountPath, readOnly: true };
  const mounts = [...(container.volumeMounts ?? [])];
  const i = mounts.findIndex((m) => m.name === volumeName);
  if (i >= 0) mounts[i] = mount;
  else mounts.push(mount);
  return { ...container, volumeMounts: mounts };
}

function mutateContainers(
  containers: Container[] | undefined,
  clientId: string,
  tenantId: string,
  skip: Set<string> | undefined,
  host: string,
  volumeName: string,
) {
  if (containers === undefined) return undefined;
  return containers.map((c) => (skip?.has(c.name) ? c : addProjectedVolumeMount(addEnvironmentVariables(c, clientId, tenantId, host), volumeName)));
}

/**
 * `Handle`'s mutation: the pod as the webhook admits it (a new object; the input is not changed). `sa` is the pod's
 * service account (`spec.serviceAccountName`, else `default`, in the request's namespace). Throws where the webhook
 * answers with an admission error.
 */
export function mutatePod(input: Pod, sa: ServiceAccount, config: WebhookConfig): Pod {
  const pod = structuredClone(input);
  const podName = pod.metadata.name || `${pod.metadata.generateName ?? ''} (prefix)`;
  const expiration = getServiceAccountTokenExpiration(pod, sa);
  const clientId = sa.metadata.annotations?.[ClientIDAnnotation] ?? '';
  const tenantId = getTenantID(sa, config);
  const skip = getSkipContainers(pod);
  const volumeName = buildVolumeName(podName);
  const host = config.azureAuthorityHost ?? PublicCloudAuthorityHost;
  const initContainers = mutateContainers(pod.spec.initContainers, clientId, tenantId, skip, host, volumeName);
  if (initContainers !== undefined) pod.spec.initContainers = initContainers;
  pod.spec.containers = mutateContainers(pod.spec.containers, clientId, tenantId, skip, host, volumeName)!;
  const volume: Volume = {
    name: volumeName,
    projected: { sources: [{ serviceAccountToken: { path: TokenFilePath, expirationSeconds: expiration, audience: config.audience ?? DefaultAudience } }] },
  };
  const volumes = [...(pod.spec.volumes ?? [])];
  const i = volumes.findIndex((v) => v.name === volumeName);
  if (i >= 0) volumes[i] = volume;
  else volumes.push(volume);
  pod.spec.volumes = volumes;
  return pod;
}
