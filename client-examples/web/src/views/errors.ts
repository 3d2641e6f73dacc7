import type { CombinedError } from 'urql';

/** What to show for a failed operation: the server's message (with its code), or that we are offline. */
export function errorText(error: CombinedError): string {
  if (error.networkError) return 'Cannot reach the server; check your connection.';
  const first = error.graphQLErrors[0];
  if (!first) return error.message;
  const code = first.extensions?.code;
  return code ? `${first.message} (${code})` : first.message;
}
