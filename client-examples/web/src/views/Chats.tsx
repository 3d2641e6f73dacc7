// The chat list with unread counts, kept current by `chatEvents`, and a way to start a direct chat.
import { useState, type FormEvent } from 'react';
import { useClient, useQuery, useSubscription } from 'urql';
import { graphql } from '../gql';
import { useSession } from '../session';
import { go } from '../route';
import { errorText } from './errors';

const ChatList = graphql(`
  query ChatList {
    chats(first: 50) {
      edges {
        node {
          id
          kind
          title
          unreadCount
          members { id nickname }
          lastMessage { id text author { nickname } }
        }
      }
    }
  }
`);

const AnyChatEvent = graphql(`
  subscription AnyChatEvent {
    chatEvents { kind chatId }
  }
`);

const FindUser = graphql(`
  query FindUser($nickname: String!) {
    userByNickname(nickname: $nickname) { id }
  }
`);

const StartChat = graphql(`
  mutation StartChat($userId: ID!) {
    createDirectChat(userId: $userId) { id }
  }
`);

/** The chat list, refetched whenever something happens in one of the caller's chats (typing aside). */
function useChatList() {
  const [result, refetch] = useQuery({ query: ChatList });
  useSubscription({ query: AnyChatEvent }, (_, event) => {
    if (event.chatEvents.kind !== 'TYPING') refetch({ requestPolicy: 'network-only' });
    return event;
  });
  return result;
}

/** Chats with unread messages, for the navigation badge. */
export function useUnreadChats(): number {
  const { data } = useChatList();
  return data?.chats.edges.filter(({ node }) => node.unreadCount > 0).length ?? 0;
}

export function Chats() {
  const { data, error } = useChatList();
  const me = useSession()?.userId;
  if (error) return <p className="error">{errorText(error)}</p>;
  return (
    <section>
      <h2>Chats</h2>
      <NewChat />
      <ul className="chats" data-testid="chat-list">
        {data?.chats.edges.map(({ node: chat }) => (
          <li key={chat.id} className="chat-item">
            <a href={`#/chat/${chat.id}`}>
              {chat.title ??
                chat.members
                  .filter((member) => member.id !== me)
                  .map((member) => `@${member.nickname}`)
                  .join(', ')}
            </a>
            {chat.unreadCount > 0 && (
              <span className="badge" data-testid="unread">{chat.unreadCount}</span>
            )}
            <small>{chat.lastMessage?.text}</small>
          </li>
        ))}
      </ul>
    </section>
  );
}

function NewChat() {
  const client = useClient();
  const [nickname, setNickname] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    const found = await client.query(FindUser, { nickname }, { requestPolicy: 'network-only' }).toPromise();
    const userId = found.data?.userByNickname?.id;
    if (!userId) return setProblem(found.error ? errorText(found.error) : `No one is called @${nickname}.`);
    const started = await client.mutation(StartChat, { userId }).toPromise();
    if (started.data) go(`/chat/${started.data.createDirectChat.id}`);
    else if (started.error) setProblem(errorText(started.error));
  }
  return (
    <form className="card" onSubmit={submit}>
      <input
        placeholder="Chat with @nickname"
        value={nickname}
        required
        onChange={(e) => setNickname(e.target.value.replace(/^@/, ''))}
        data-testid="new-chat"
      />
      <button>Start</button>
      {problem && <p className="error">{problem}</p>}
    </form>
  );
}
