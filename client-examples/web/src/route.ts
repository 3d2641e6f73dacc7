// Hash routes (`#/post/<id>`), so the app is static files any server can serve.
import { useEffect, useState } from 'react';

export type Route =
  | { name: 'hot' }
  | { name: 'post'; id: string }
  | { name: 'feed' }
  | { name: 'chats' }
  | { name: 'chat'; id: string }
  | { name: 'search' }
  | { name: 'profile' }
  | { name: 'analytics' };

export function parse(hash: string): Route {
  const [, name, id] = hash.replace(/^#/, '').split('/');
  if (name === 'post' && id) return { name: 'post', id };
  if (name === 'chat' && id) return { name: 'chat', id };
  if (name === 'feed' || name === 'chats' || name === 'search' || name === 'profile' || name === 'analytics')
    return { name };
  return { name: 'hot' };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parse(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function go(path: string) {
  location.hash = path;
}
