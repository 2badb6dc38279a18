/**
 * Public clients: applications that run on a person's machine and hold no secret, so they prove nothing
 * about themselves (`appidacr` 0). Entra pre-registers Microsoft's first-party tools in every tenant under
 * well-known client ids; openmsi does the same for the two that sign people in with its grants.
 */
const NATIVE_REDIRECT_URIS = ['http://localhost', 'https://login.microsoftonline.com/common/oauth2/nativeclient'];

export const PUBLIC_CLIENTS: ReadonlyMap<string, { displayName: string; redirectUris: readonly string[] }> = new Map([
  // Their registrations' redirect URIs: the loopback one (MSAL's local listener, any port) and the native-client page.
  ['04b07795-8ddb-461a-bbee-02f9e1bf7b46', { displayName: 'Microsoft Azure CLI', redirectUris: NATIVE_REDIRECT_URIS }],
  ['1950a258-227b-4e31-a9cf-717495945fc2', { displayName: 'Microsoft Azure PowerShell', redirectUris: NATIVE_REDIRECT_URIS }],
]);

/** Whether `clientId` is a pre-registered public client (client ids compare case-insensitively). */
export function isPublicClient(clientId: string): boolean {
  return PUBLIC_CLIENTS.has(clientId.toLowerCase());
}
