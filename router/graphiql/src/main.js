// Parley's GraphiQL: GraphiQL 5 with queries and mutations over HTTP and subscriptions over
// graphql-transport-ws on the same `/graphql` path. The headers typed in the editor (e.g.
// {"Authorization": "Bearer …"}) go with every HTTP request and in the socket's `connection_init`; a new
// socket is opened when they change.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { createClient } from 'graphql-ws';
import defaultQuery from './default-tab.graphql?raw';

const url = `${location.origin}/graphql`;
const wsUrl = url.replace(/^http/, 'ws');

let socket = null;
let socketHeaders = null;
function socketFor(headers) {
  const key = JSON.stringify(headers);
  if (!socket || socketHeaders !== key) {
    socket?.dispose();
    socketHeaders = key;
    socket = createClient({ url: wsUrl, connectionParams: () => headers, lazy: true });
  }
  return socket;
}

const httpFetcher = createGraphiQLFetcher({ url });
function fetcher(params, opts) {
  const headers = opts?.headers ?? {};
  if (!/^\s*subscription\b/m.test(params.query ?? '')) return httpFetcher(params, opts);
  return createGraphiQLFetcher({ url, wsClient: socketFor(headers) })(params, opts);
}

createRoot(document.getElementById('graphiql')).render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery,
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: true,
  }),
);
