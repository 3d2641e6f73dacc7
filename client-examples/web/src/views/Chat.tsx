// One conversation. Messages come from the first page, then live from `chatEvents`; after the socket
// reconnects the view asks for `messages(afterSeq: <the last it has>)`, so nothing sent meanwhile is missed.
// Everything is kept by id and shown in `seq` order, so no message shows twice.
//
// Sending: each message gets a `clientMessageId` before the first try and keeps it, and the send is retried
// until the server answers (when the browser comes back online, and every few seconds). A retry of a send
// that did reach the server returns the first message instead of a second one.
//
// Typing: `setTyping(true)` at most every 3 s while you type, `false` when you send; others' indicators
// expire by themselves. Receipts: the newest message from someone else is marked read while the page is
// visible; your messages show "read" once anyone else has read them.
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useClient, useMutation, useQuery, useSubscription } from 'urql';
import { graphql } from '../gql';
import type { MessageFieldsFragment } from '../gql/graphql';
import { onReconnect } from '../client';
import { useSession } from '../session';
import { errorText } from './errors';

export const MessageFields = graphql(`
  fragment MessageFields on Message {
    id
    seq
    text
    kind
    createdAt
    clientMessageId
    author { id nickname }
    readBy { id }
  }
`);

const Conversation = graphql(`
  query Conversation($id: ID!) {
    chat(id: $id) {
      id
      title
      members { id nickname }
      messages(last: 50) { edges { node { ...MessageFields } } }
    }
  }
`);

const MessagesAfter = graphql(`
  query MessagesAfter($id: ID!, $afterSeq: Int!) {
    chat(id: $id) {
      id
      messages(afterSeq: $afterSeq, first: 100) { edges { node { ...MessageFields } } }
    }
  }
`);

const ChatEvents = graphql(`
  subscription ChatEvents {
    chatEvents {
      kind
      chatId
      seq
      typing
      user { id nickname }
      message { ...MessageFields }
    }
  }
`);

const SendMessage = graphql(`
  mutation SendMessage($chatId: ID!, $input: SendMessageInput!) {
    sendMessage(chatId: $chatId, input: $input) { ...MessageFields }
  }
`);

const MarkRead = graphql(`
  mutation MarkRead($chatId: ID!, $messageId: ID!) {
    markRead(chatId: $chatId, messageId: $messageId)
  }
`);

const SetTyping = graphql(`
  mutation SetTyping($chatId: ID!, $typing: Boolean!) {
    setTyping(chatId: $chatId, typing: $typing)
  }
`);

interface Pending {
  clientMessageId: string;
  text: string;
  /** Unreachable: retried. */
  failed: boolean;
  /** Refused (a GraphQL error): shown, not retried. */
  refused?: string;
}

const TYPING_SHOWN_MS = 6_000;
const TYPING_RENEW_MS = 3_000;
const RETRY_MS = 3_000;

export function ChatView({ id }: { id: string }) {
  const client = useClient();
  const me = useSession()?.userId;
  const [{ data, error }] = useQuery({ query: Conversation, variables: { id }, requestPolicy: 'network-only' });
  const [messages, setMessages] = useState(new Map<string, MessageFieldsFragment>());
  const [readUpTo, setReadUpTo] = useState(0); // the highest seq another member has read
  const [typists, setTypists] = useState(new Map<string, { nickname: string; until: number }>());
  const [outbox, setOutbox] = useState<Pending[]>([]);
  const [, markRead] = useMutation(MarkRead);
  const [, setTyping] = useMutation(SetTyping);

  const merge = useCallback((list: MessageFieldsFragment[]) => {
    setMessages((map) => {
      const next = new Map(map);
      list.forEach((message) => next.set(message.id, message));
      return next;
    });
    // A message that arrived is no longer pending, however it arrived (answer, event or resync).
    const arrived = new Set(list.map((message) => message.clientMessageId).filter(Boolean));
    setOutbox((pending) => pending.filter((p) => !arrived.has(p.clientMessageId)));
  }, []);

  useEffect(() => {
    if (data?.chat) merge(data.chat.messages.edges.map(({ node }) => node));
  }, [data, merge]);

  const sorted = useMemo(() => [...messages.values()].sort((a, b) => a.seq - b.seq), [messages]);
  const lastSeq = sorted.at(-1)?.seq ?? 0;
  const lastSeqRef = useRef(lastSeq);
  lastSeqRef.current = lastSeq;

  // Resync after a reconnect: whatever was sent while the socket was down.
  useEffect(
    () =>
      onReconnect(async () => {
        const result = await client
          .query(MessagesAfter, { id, afterSeq: lastSeqRef.current }, { requestPolicy: 'network-only' })
          .toPromise();
        if (result.data?.chat) merge(result.data.chat.messages.edges.map(({ node }) => node));
      }),
    [client, id, merge],
  );

  useSubscription({ query: ChatEvents }, (_, received) => {
    const event = received.chatEvents;
    if (event.chatId !== id) return received;
    if (event.message) merge([event.message]);
    if (event.kind === 'READ' && event.user?.id !== me && event.seq) {
      setReadUpTo((seq) => Math.max(seq, event.seq ?? 0));
    }
    if (event.kind === 'TYPING' && event.user && event.user.id !== me) {
      const user = event.user;
      setTypists((map) => {
        const next = new Map(map);
        if (event.typing) next.set(user.id, { nickname: user.nickname, until: Date.now() + TYPING_SHOWN_MS });
        else next.delete(user.id);
        return next;
      });
    }
    if (event.kind === 'MESSAGE_ADDED' && event.message) {
      const author = event.message.author.id;
      setTypists((map) => {
        const next = new Map(map);
        next.delete(author);
        return next;
      });
    }
    return received;
  });

  // Typing indicators expire on their own.
  useEffect(() => {
    if (typists.size === 0) return;
    const timer = setInterval(() => {
      setTypists((map) => new Map([...map].filter(([, t]) => t.until > Date.now())));
    }, 1_000);
    return () => clearInterval(timer);
  }, [typists.size]);

  // Read receipts: the newest message from someone else, while the page is visible.
  const newestFromOthers = [...sorted].reverse().find((m) => m.author.id !== me);
  const markedRef = useRef<string | null>(null);
  useEffect(() => {
    const mark = () => {
      if (!newestFromOthers || document.visibilityState !== 'visible') return;
      if (markedRef.current === newestFromOthers.id) return;
      markedRef.current = newestFromOthers.id;
      void markRead({ chatId: id, messageId: newestFromOthers.id });
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [newestFromOthers, id, markRead]);

  // Sending, with retries that keep the clientMessageId.
  const send = useCallback(
    async (pending: Pending) => {
      const result = await client
        .mutation(SendMessage, {
          chatId: id,
          input: { text: pending.text, clientMessageId: pending.clientMessageId },
        })
        .toPromise();
      if (result.data) return merge([result.data.sendMessage]);
      const refused = result.error && !result.error.networkError ? errorText(result.error) : undefined;
      setOutbox((all) =>
        all.map((p) =>
          p.clientMessageId === pending.clientMessageId ? { ...p, failed: !refused, refused } : p,
        ),
      );
    },
    [client, id, merge],
  );
  const outboxRef = useRef(outbox);
  outboxRef.current = outbox;
  useEffect(() => {
    const retry = () => outboxRef.current.filter((p) => p.failed).forEach((p) => void send(p));
    window.addEventListener('online', retry);
    const timer = setInterval(retry, RETRY_MS);
    return () => {
      window.removeEventListener('online', retry);
      clearInterval(timer);
    };
  }, [send]);

  const typingSentAt = useRef(0);
  function onTyping() {
    if (Date.now() - typingSentAt.current < TYPING_RENEW_MS) return;
    typingSentAt.current = Date.now();
    void setTyping({ chatId: id, typing: true });
  }

  function submit(text: string) {
    const pending = { clientMessageId: crypto.randomUUID(), text, failed: false };
    setOutbox((all) => [...all, pending]);
    typingSentAt.current = 0;
    void setTyping({ chatId: id, typing: false });
    void send(pending);
  }

  if (error) return <p className="error">{errorText(error)}</p>;
  if (!data) return <p className="loading">Loading…</p>;
  if (!data.chat) return <p className="error">This chat is gone, or you are no longer in it.</p>;
  const chat = data.chat;
  const others = chat.members.filter((m) => m.id !== me);

  return (
    <section className="conversation">
      <h2>{chat.title ?? others.map((m) => `@${m.nickname}`).join(', ')}</h2>
      <ol className="messages" data-testid="messages">
        {sorted.map((message) => (
          <li key={message.id} className={message.author.id === me ? 'mine' : 'theirs'} data-testid="message">
            <span className="text">{message.text ?? <em>deleted</em>}</span>
            <small>
              @{message.author.nickname}
              {message.author.id === me &&
                (message.readBy.length > 0 || readUpTo >= message.seq) && (
                  <span className="receipt" data-testid="receipt"> · read</span>
                )}
            </small>
          </li>
        ))}
        {outbox.map((pending) => (
          <li key={pending.clientMessageId} className="mine pending" data-testid="pending">
            <span className="text">{pending.text}</span>
            <small>{pending.refused ?? (pending.failed ? 'not sent yet, retrying…' : 'sending…')}</small>
          </li>
        ))}
      </ol>
      <p className="typing" data-testid="typing">
        {[...typists.values()].map((t) => `@${t.nickname}`).join(', ')}
        {typists.size > 0 && ' is typing…'}
      </p>
      <Composer onTyping={onTyping} onSend={submit} />
    </section>
  );
}

function Composer({ onTyping, onSend }: { onTyping: () => void; onSend: (text: string) => void }) {
  const [text, setText] = useState('');
  function submit(event: FormEvent) {
    event.preventDefault();
    if (!text.trim()) return;
    onSend(text);
    setText('');
  }
  return (
    <form className="composer" onSubmit={submit}>
      <input
        placeholder="Message"
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          onTyping();
        }}
        data-testid="composer"
      />
      <button>Send</button>
    </form>
  );
}
