// Search as you type: the query waits for a 250 ms pause, and an answer to an older query is never shown
// over a newer one (urql keeps only the current variables' result).
import { useEffect, useState } from 'react';
import { useQuery } from 'urql';
import { graphql } from '../gql';
import type { SearchEverythingQuery } from '../gql/graphql';
import { errorText } from './errors';

const SearchEverything = graphql(`
  query SearchEverything($query: String!) {
    search(query: $query, first: 20) {
      totalCount
      edges {
        node {
          highlights { field snippet }
          node {
            __typename
            ... on User { id nickname }
            ... on Post { id title }
            ... on Comment { id post { id } }
            ... on Message { id chatId }
          }
        }
      }
    }
  }
`);

export function Search() {
  const [text, setText] = useState('');
  const [query, setQuery] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => setQuery(text.trim()), 250);
    return () => clearTimeout(timer);
  }, [text]);
  const [{ data, error, fetching }] = useQuery({
    query: SearchEverything,
    variables: { query },
    pause: query.length < 2,
  });
  return (
    <section>
      <h2>Search</h2>
      <input
        autoFocus
        placeholder="Search people, posts, comments, your chats"
        value={text}
        onChange={(e) => setText(e.target.value)}
        data-testid="search"
      />
      {error && <p className="error">{errorText(error)}</p>}
      {fetching && <p className="loading">Searching…</p>}
      {data && query.length >= 2 && <p>{data.search.totalCount} results</p>}
      <ul className="results" data-testid="results">
        {query.length >= 2 &&
          data?.search.edges.map(({ node: hit }, index) => {
            const { href, label } = describe(hit.node);
            return (
              <li key={index}>
                {href ? <a href={href}>{label}</a> : <strong>{label}</strong>}
                {hit.highlights.map((h) => (
                  // The server HTML-escapes snippets and adds only <mark>.
                  <p key={h.field} dangerouslySetInnerHTML={{ __html: h.snippet }} />
                ))}
              </li>
            );
          })}
      </ul>
    </section>
  );
}

type Hit = NonNullable<SearchEverythingQuery['search']['edges'][number]['node']['node']>;

/** Where a hit links to, and what it says. */
function describe(node: Hit | null): { href?: string; label: string } {
  switch (node?.__typename) {
    case 'User':
      return { label: `@${node.nickname}` };
    case 'Post':
      return { href: `#/post/${node.id}`, label: node.title };
    case 'Comment':
      return { href: `#/post/${node.post.id}`, label: 'Comment' };
    case 'Message':
      return { href: `#/chat/${node.chatId}`, label: 'Message' };
    default:
      return { label: 'Gone' };
  }
}
