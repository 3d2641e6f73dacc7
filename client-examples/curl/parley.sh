# Two shell functions for talking to Parley with curl and jq; `source` this file.
#
#   gql QUERY [VARIABLES]        one query or mutation as $TOKEN (when set); prints `data` as one JSON line,
#                                or each error's message and code on stderr and fails
#   subscribe QUERY [VARIABLES]  a subscription over SSE (`curl -N`, Accept: text/event-stream); prints each
#                                event as one JSON line until the stream ends or is stopped
#
# PARLEY_URL is the router's GraphQL endpoint (default http://127.0.0.1:4000/graphql, where `parley up` listens).

PARLEY_URL=${PARLEY_URL:-http://127.0.0.1:4000/graphql}

# The request body: {"query": …, "variables": …}.
_parley_body() {
  local variables=${2:-'{}'}
  jq -cn --arg query "$1" --argjson variables "$variables" '{query: $query, variables: $variables}'
}

# Content-Type: application/json also satisfies the router's CSRF check (no "simple" request gets through).
_parley_headers() {
  _parley_args=(-H 'content-type: application/json')
  if [ -n "${TOKEN:-}" ]; then _parley_args+=(-H "authorization: Bearer $TOKEN"); fi
}

gql() {
  local response
  _parley_headers
  response=$(curl -sS "$PARLEY_URL" "${_parley_args[@]}" --data "$(_parley_body "$@")") || return 1
  if jq -e '.errors // empty' <<<"$response" >/dev/null; then
    jq -r '.errors[] | "error: \(.extensions.code // "?"): \(.message)"' <<<"$response" >&2
    return 1
  fi
  jq -c '.data' <<<"$response"
}

subscribe() {
  _parley_headers
  # The router answers with `event: next` / `data: {…}` pairs and ends with `event: complete`.
  curl -sS -N "$PARLEY_URL" "${_parley_args[@]}" -H 'accept: text/event-stream' --data "$(_parley_body "$@")" |
    sed -un 's/^data: \(..*\)$/\1/p'
}
