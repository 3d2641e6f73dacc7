// The home feed: posts of the people and topics you follow.
import { useQuery } from 'urql';
import { graphql } from '../gql';
import { errorText } from './errors';
import { PostItem } from './PostItem';

const FeedPosts = graphql(`
  query FeedPosts {
    feed(sort: NEW, first: 30) {
      edges { node { ...PostSummary } }
    }
  }
`);

export function Feed() {
  const [{ data, error }] = useQuery({ query: FeedPosts, requestPolicy: 'network-only' });
  if (error) return <p className="error">{errorText(error)}</p>;
  return (
    <section>
      <h2>Your feed</h2>
      {data && data.feed.edges.length === 0 && <p>Follow someone to fill your feed.</p>}
      <ol className="posts" data-testid="feed">
        {data?.feed.edges.map(({ node }) => <PostItem key={node.id} post={node} />)}
      </ol>
    </section>
  );
}
