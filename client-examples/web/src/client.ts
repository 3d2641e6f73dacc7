// The urql client: queries and mutations over HTTP with the access token, subscriptions over
// graphql-transport-ws (graphql-ws). An `UNAUTHENTICATED` answer or HTTP 401 triggers one refresh (urql's
// authExchange queues every operation behind it, and `auth.refresh` is single-flight anyway), then the
// operation runs again. The socket authenticates in `connection_init` with a token fresh at that moment, and
// reconnects forever with backoff; after a reconnect, views resync what they missed (`onReconnect`).
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';
import { authExchange } from '@urql/exchange-auth';
import { createClient as createWsClient } from 'graphql-ws';
import { API_URL, WS_URL } from './config';
import { currentSession, freshAccessToken, refresh, subscribe as subscribeToSession } from './auth';

const reconnectListeners = new Set<() => void>();

/** Calls `listener` each time the socket comes back after a drop; returns the unsubscribe. */
export function onReconnect(listener: () => void): () => void {
  reconnectListeners.add(listener);
  return () => reconnectListeners.delete(listener);
}

/** The access token the open socket was authenticated with. */
let socketToken: string | null = null;

export const socket = createWsClient({
  url: WS_URL,
  lazy: true,
  keepAlive: 10_000,
  retryAttempts: Number.POSITIVE_INFINITY,
  // The first attempt after a working connection goes at once (a socket replaced for a new token), later
  // ones back off up to 10 s.
  retryWait: (retries) =>
    new Promise((resolve) =>
      setTimeout(resolve, retries === 0 ? 0 : Math.min(10_000, 500 * 2 ** retries) + Math.random() * 500),
    ),
  shouldRetry: () => true,
  connectionParams: async () => {
    socketToken = null; // a refresh while connecting is this connection's own
    const token = await freshAccessToken();
    socketToken = token;
    return token ? { Authorization: `Bearer ${token}` } : {};
  },
  on: {
    connected: (_socket, _payload, wasRetry) => {
      if (wasRetry) reconnectListeners.forEach((listener) => listener());
    },
  },
});

// The router runs each new subscription, and resolves each live event, with the token the socket opened with
// (`connection_init`), and that token expires: once the session holds a newer one, the socket is replaced
// (graphql-ws resubscribes everything on the new one, and views resync). An expired token refused on a new subscription is an auth error like any other:
// authExchange refreshes, which lands here, and retries on the new socket.
subscribeToSession(() => {
  const token = currentSession()?.accessToken ?? null;
  if (socketToken !== null && token !== socketToken) {
    socketToken = null;
    socket.terminate();
  }
});

/** Drops the socket so the next subscription connects with the current session's token. */
export function resetSocket() {
  socket.terminate();
}

export const client = new Client({
  url: API_URL,
  requestPolicy: 'cache-and-network',
  exchanges: [
    cacheExchange,
    authExchange(async (utils) => ({
      addAuthToOperation(operation) {
        const token = currentSession()?.accessToken;
        return token ? utils.appendHeaders(operation, { Authorization: `Bearer ${token}` }) : operation;
      },
      didAuthError(error) {
        return (
          error.response?.status === 401 ||
          error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED')
        );
      },
      async refreshAuth() {
        await refresh(); // a refusal signs out; offline, the operation fails and is retried later
      },
    })),
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({
          unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink),
        }),
      }),
    }),
  ],
});
