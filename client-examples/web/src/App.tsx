// The shell: signs in (or restores the session from the stored refresh token), then shows the navigation
// with live badges (unread chats, unread notifications), the admins' analytics link, and the current screen.
import { useEffect, useState } from 'react';
import { useQuery } from 'urql';
import { graphql } from './gql';
import { hasRefreshToken, refresh, signOut } from './auth';
import { resetSocket } from './client';
import { useRoute } from './route';
import { useSession } from './session';
import { SignIn } from './views/SignIn';
import { Hot } from './views/Hot';
import { PostView } from './views/Post';
import { Feed } from './views/Feed';
import { Chats, useUnreadChats } from './views/Chats';
import { ChatView } from './views/Chat';
import { Search } from './views/Search';
import { Profile } from './views/Profile';
import { NotificationBadge } from './views/Notifications';
import { Analytics } from './views/Analytics';

const NavMe = graphql(`
  query NavMe {
    me { id role }
  }
`);

export function App() {
  const session = useSession();
  const [restoring, setRestoring] = useState(() => hasRefreshToken());
  useEffect(() => {
    if (restoring) void refresh().finally(() => setRestoring(false));
  }, [restoring]);
  // A new user means a new socket: subscriptions must run as whoever is signed in now.
  useEffect(() => resetSocket(), [session?.userId]);

  if (restoring) return <p className="loading">Signing you in…</p>;
  if (!session) return <SignIn />;
  return <SignedIn key={session.userId} nickname={session.nickname} />;
}

function SignedIn({ nickname }: { nickname: string }) {
  const route = useRoute();
  const unreadChats = useUnreadChats();
  const [{ data: me }] = useQuery({ query: NavMe });
  const admin = me?.me?.role === 'ADMIN';
  return (
    <div className="app">
      <nav>
        <strong>Parley</strong>
        <a href="#/hot">Hot</a>
        <a href="#/feed">Feed</a>
        <a href="#/chats">
          Chats {unreadChats > 0 && <span className="badge" data-testid="unread-chats">{unreadChats}</span>}
        </a>
        <a href="#/search">Search</a>
        <NotificationBadge />
        {admin && <a href="#/analytics" data-testid="analytics-link">Analytics</a>}
        <span className="spacer" />
        <a href="#/profile" data-testid="me">@{nickname}</a>
        <button onClick={signOut}>Sign out</button>
      </nav>
      <main>
        {route.name === 'hot' && <Hot />}
        {route.name === 'post' && <PostView id={route.id} />}
        {route.name === 'feed' && <Feed />}
        {route.name === 'chats' && <Chats />}
        {route.name === 'chat' && <ChatView id={route.id} />}
        {route.name === 'search' && <Search />}
        {route.name === 'profile' && <Profile />}
        {route.name === 'analytics' && <Analytics />}
      </main>
    </div>
  );
}
