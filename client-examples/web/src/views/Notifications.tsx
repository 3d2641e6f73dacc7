// The unread-notifications badge, bumped live by `notificationAdded`.
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../gql';

const UnreadNotifications = graphql(`
  query UnreadNotifications {
    unreadNotificationCount
  }
`);

const NotificationAdded = graphql(`
  subscription NotificationAdded {
    notificationAdded { id kind }
  }
`);

export function NotificationBadge() {
  const [{ data }, refetch] = useQuery({ query: UnreadNotifications });
  // Grouped notifications update in place, so the count is read again rather than incremented.
  useSubscription({ query: NotificationAdded }, (_, event) => {
    refetch({ requestPolicy: 'network-only' });
    return event;
  });
  const count = data?.unreadNotificationCount ?? 0;
  return (
    <span className="notifications" title="Unread notifications">
      Alerts {count > 0 && <span className="badge" data-testid="unread-notifications">{count}</span>}
    </span>
  );
}
