// React's view of the session in auth.ts.
import { useSyncExternalStore } from 'react';
import { currentSession, subscribe, type Session } from './auth';

export function useSession(): Session | null {
  return useSyncExternalStore(subscribe, currentSession);
}
