#!/usr/bin/env bash
# Parley from the shell: two people register, post, comment, follow and chat — a live chat stream over SSE,
# a retried send that is not duplicated, a refresh-token rotation and an error code. Each step prints what
# it got; the script stops at the first unexpected answer. Needs curl and jq, and a running `parley up`
# (or PARLEY_URL pointing at a router).
set -euo pipefail
here=$(dirname "$0")
source "$here/parley.sh"
run=$(date +%s)$RANDOM
step() { printf '\n# %s\n' "$*"; }
expect() { # expect JSON JQ-FILTER: fail unless the filter is true for the JSON
  jq -e "$2" <<<"$1" >/dev/null || { echo "unexpected: $1 (wanted $2)" >&2; exit 1; }
}

step "alice and bob register; each gets an access token (short-lived) and a refresh token"
register='mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken user { id nickname } }
}'
alice=$(gql "$register" "{\"input\": {\"email\": \"alice$run@example.com\", \"password\": \"correct horse 1\",
  \"name\": \"Alice\", \"nickname\": \"alice$run\"}}")
bob=$(gql "$register" "{\"input\": {\"email\": \"bob$run@example.com\", \"password\": \"correct horse 1\",
  \"name\": \"Bob\", \"nickname\": \"bob$run\"}}")
jq -c '.register | {user, accessToken: (.accessToken[:24] + "…"), refreshToken: (.refreshToken[:8] + "…")}' <<<"$alice"
alice_token=$(jq -r .register.accessToken <<<"$alice")
alice_id=$(jq -r .register.user.id <<<"$alice")
bob_token=$(jq -r .register.accessToken <<<"$bob")
bob_refresh=$(jq -r .register.refreshToken <<<"$bob")

step "alice posts"
TOKEN=$alice_token
post=$(gql 'mutation($input: CreatePostInput!) { createPost(input: $input) { id title } }' \
  '{"input": {"title": "Hello from curl", "body": "Posted with **curl**."}}')
echo "$post"
post_id=$(jq -r .createPost.id <<<"$post")

step "bob comments and follows alice"
TOKEN=$bob_token
gql 'mutation($post: ID!) { createComment(postId: $post, body: "Nice one") { id body } }' "{\"post\": \"$post_id\"}"
gql 'mutation($user: ID!) { follow(userId: $user) }' "{\"user\": \"$alice_id\"}"

step "anyone reads the post with its comments"
TOKEN=
read_post=$(gql 'query($id: ID!) { post(id: $id) { title author { nickname followerCount }
  comments(first: 10) { edges { node { body author { nickname } } } } } }' "{\"id\": \"$post_id\"}")
echo "$read_post"
expect "$read_post" '.post.comments.edges[0].node.body == "Nice one" and .post.author.followerCount == 1'

step "alice follows her chats live over SSE (curl -N) while bob opens a chat with her and writes"
events=$(mktemp)
TOKEN=$alice_token subscribe 'subscription { chatEvents { kind chatId message { text author { nickname } } } }' \
  > "$events" &
listener=$!
# The listener is a subshell running curl | sed: stop its children, then it, and reap it (quietly).
stop_listener() {
  pkill -P "$listener" 2>/dev/null || true
  kill "$listener" 2>/dev/null || true
  wait "$listener" 2>/dev/null || true
  rm -f "$events"
}
trap stop_listener EXIT
sleep 1 # the stream is open once the router has answered its headers
TOKEN=$bob_token
chat_id=$(gql 'mutation($user: ID!) { createDirectChat(userId: $user) { id } }' "{\"user\": \"$alice_id\"}" |
  jq -r .createDirectChat.id)
send='mutation($chat: ID!, $input: SendMessageInput!) { sendMessage(chatId: $chat, input: $input) { id seq text } }'
message="{\"chat\": \"$chat_id\", \"input\": {\"text\": \"hi alice\", \"clientMessageId\": \"curl-$run\"}}"
first=$(gql "$send" "$message")
echo "$first"

step "bob's connection dropped before the answer, so he sends again with the same clientMessageId: same message"
again=$(gql "$send" "$message")
echo "$again"
[ "$(jq -r .sendMessage.id <<<"$first")" = "$(jq -r .sendMessage.id <<<"$again")" ] ||
  { echo "the retry sent a second message" >&2; exit 1; }

for _ in $(seq 50); do grep -q 'hi alice' "$events" && break; sleep 0.2; done
echo "alice's stream:"
cat "$events"
grep -q '"text":"hi alice"' "$events" || { echo "alice's stream never showed the message" >&2; exit 1; }
[ "$(grep -c '"text":"hi alice"' "$events")" = 1 ] || { echo "the message arrived twice" >&2; exit 1; }

step "bob's access token expires within minutes; his refresh token buys a new pair (and is spent)"
TOKEN=
refresh='mutation($token: String!) { refreshToken(refreshToken: $token) { accessToken refreshToken } }'
rotated=$(gql "$refresh" "{\"token\": \"$bob_refresh\"}")
expect "$rotated" ".refreshToken.refreshToken != \"$bob_refresh\""
echo "new tokens issued"
if refused=$(gql "$refresh" "{\"token\": \"$bob_refresh\"}" 2>&1); then
  echo "a spent refresh token was accepted" >&2
  exit 1
fi
echo "$refused"
echo "the spent refresh token is refused (and that signs the whole session out: a thief's copy is useless)"

step "a bad input is an error with a code, never a half-done write"
TOKEN=$alice_token
if refused=$(gql 'mutation { createPost(input: {title: "", body: "x"}) { id } }' 2>&1); then
  echo "an empty title was accepted" >&2
  exit 1
fi
echo "$refused"
expect "\"$refused\"" 'contains("BAD_USER_INPUT")'
echo
echo "flow: ok"
