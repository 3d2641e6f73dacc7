// The HOT posts (Lemmy's rank), page after page as you scroll, and a form to post.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../gql';
import { go } from '../route';
import { errorText } from './errors';
import { PostItem } from './PostItem';

const HotPosts = graphql(`
  query HotPosts($after: String) {
    posts(sort: HOT, first: 10, after: $after) {
      edges { node { ...PostSummary } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const CreatePost = graphql(`
  mutation CreatePost($input: CreatePostInput!) {
    createPost(input: $input) { id }
  }
`);

export function Hot() {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  return (
    <section>
      <NewPost />
      <h2>Hot</h2>
      <ol className="posts" data-testid="hot-posts">
        {cursors.map((after, index) => (
          <Page
            key={after ?? 'first'}
            after={after}
            isLast={index === cursors.length - 1}
            onMore={(next) => setCursors((all) => (all.includes(next) ? all : [...all, next]))}
          />
        ))}
      </ol>
    </section>
  );
}

/** One page of 10; the last page watches a sentinel below it and asks for the next when it scrolls in. */
function Page({ after, isLast, onMore }: { after: string | null; isLast: boolean; onMore: (cursor: string) => void }) {
  const [{ data, fetching, error }] = useQuery({ query: HotPosts, variables: { after } });
  const sentinel = useRef<HTMLLIElement>(null);
  const page = data?.posts.pageInfo;
  useEffect(() => {
    if (!isLast || !page?.hasNextPage || !page.endCursor || !sentinel.current) return;
    const next = page.endCursor;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) onMore(next);
    });
    observer.observe(sentinel.current);
    return () => observer.disconnect();
  }, [isLast, page, onMore]);
  if (error) return <li className="error">{errorText(error)}</li>;
  return (
    <>
      {data?.posts.edges.map(({ node }) => <PostItem key={node.id} post={node} />)}
      {fetching && <li className="loading">Loading…</li>}
      {isLast && page?.hasNextPage && <li ref={sentinel} className="sentinel" data-testid="more" />}
    </>
  );
}

function NewPost() {
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [{ error, fetching }, create] = useMutation(CreatePost);
  async function submit(event: FormEvent) {
    event.preventDefault();
    const { data } = await create({ input: { title, body } });
    if (data) go(`/post/${data.createPost.id}`);
  }
  return (
    <form className="card" onSubmit={submit} data-testid="new-post">
      <input placeholder="Title" value={title} required onChange={(e) => setTitle(e.target.value)} />
      <textarea placeholder="Say something" value={body} required onChange={(e) => setBody(e.target.value)} />
      {error && <p className="error">{errorText(error)}</p>}
      <button disabled={fetching}>Post</button>
    </form>
  );
}
