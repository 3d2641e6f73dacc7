// A post with its threaded comments. New comments arrive live (`commentAdded`), and so does the score
// (`postScoreChanged`); comments are kept in one map by id, so the first page, live arrivals and your own
// replies never show twice.
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useSubscription } from 'urql';
import { graphql } from '../gql';
import type { CommentFieldsFragment } from '../gql/graphql';
import { currentSession } from '../auth';
import { onReconnect } from '../client';
import { errorText } from './errors';

export const CommentFields = graphql(`
  fragment CommentFields on Comment {
    id
    body
    createdAt
    score
    author { id nickname }
    parent { id }
  }
`);

const PostWithComments = graphql(`
  query PostWithComments($id: ID!) {
    post(id: $id) {
      id
      title
      body
      score
      myVote
      author { id nickname isFollowedByMe }
      comments(sort: NEW, first: 50) {
        edges {
          node {
            ...CommentFields
            descendants(first: 100) { edges { node { ...CommentFields } } }
          }
        }
      }
    }
  }
`);

const CommentAdded = graphql(`
  subscription CommentAdded($postId: ID!) {
    commentAdded(postId: $postId) { ...CommentFields }
  }
`);

const ScoreChanged = graphql(`
  subscription ScoreChanged($postId: ID!) {
    postScoreChanged(postId: $postId) { id score }
  }
`);

const FollowAuthor = graphql(`
  mutation FollowAuthor($userId: ID!) {
    follow(userId: $userId)
  }
`);

const AddComment = graphql(`
  mutation AddComment($postId: ID!, $body: String!, $parentId: ID) {
    createComment(postId: $postId, body: $body, parentId: $parentId) { ...CommentFields }
  }
`);

const Vote = graphql(`
  mutation Vote($targetId: ID!, $value: Int!) {
    vote(targetId: $targetId, value: $value) { score }
  }
`);

export function PostView({ id }: { id: string }) {
  const [{ data, error }, refetch] = useQuery({ query: PostWithComments, variables: { id } });
  const [comments, setComments] = useState(new Map<string, CommentFieldsFragment>());
  const [score, setScore] = useState<number | null>(null);
  const [myVote, setMyVote] = useState(0);
  const [replyTo, setReplyTo] = useState<string | null>(null);
  const [, vote] = useMutation(Vote);
  const add = (list: CommentFieldsFragment[]) =>
    setComments((map) => {
      const next = new Map(map);
      list.forEach((comment) => next.set(comment.id, comment));
      return next;
    });

  useEffect(() => {
    if (!data?.post) return;
    setScore(data.post.score);
    setMyVote(data.post.myVote);
    add(
      data.post.comments.edges.flatMap(({ node: { descendants, ...top } }) => [
        top,
        ...descendants.edges.map(({ node }) => node),
      ]),
    );
  }, [data]);
  // Comments written while the socket was down (or replaced) come with the post again.
  useEffect(() => onReconnect(() => refetch({ requestPolicy: 'network-only' })), [refetch]);
  useSubscription({ query: CommentAdded, variables: { postId: id } }, (_, event) => {
    add([event.commentAdded]);
    return event;
  });
  useSubscription({ query: ScoreChanged, variables: { postId: id } }, (_, event) => {
    setScore(event.postScoreChanged.score);
    return event;
  });

  const children = useMemo(() => {
    const byParent = new Map<string | null, CommentFieldsFragment[]>();
    [...comments.values()]
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .forEach((comment) => {
        const key = comment.parent?.id ?? null;
        byParent.set(key, [...(byParent.get(key) ?? []), comment]);
      });
    return byParent;
  }, [comments]);

  if (error) return <p className="error">{errorText(error)}</p>;
  if (!data) return <p className="loading">Loading…</p>;
  if (!data.post) return <p className="error">This post is gone.</p>;
  const post = data.post;

  async function castVote(value: number) {
    const next = myVote === value ? 0 : value;
    const { data: voted } = await vote({ targetId: post.id, value: next });
    if (voted) {
      setMyVote(next);
      setScore(voted.vote.score);
    }
  }

  const thread = (parent: string | null, depth: number) => (
    <ul className={depth === 0 ? 'comments' : 'replies'}>
      {(children.get(parent) ?? []).map((comment) => (
        <li key={comment.id} className="comment" data-testid="comment">
          <p>{comment.body}</p>
          <small>
            @{comment.author.nickname} · <button onClick={() => setReplyTo(comment.id)}>reply</button>
          </small>
          {replyTo === comment.id && <CommentForm postId={post.id} parentId={comment.id} onDone={add} />}
          {thread(comment.id, depth + 1)}
        </li>
      ))}
    </ul>
  );

  return (
    <article>
      <header className="post-header">
        <div className="votes">
          <button aria-pressed={myVote === 1} onClick={() => castVote(1)} data-testid="upvote">▲</button>
          <span data-testid="score">{score}</span>
          <button aria-pressed={myVote === -1} onClick={() => castVote(-1)} data-testid="downvote">▼</button>
        </div>
        <div>
          <h2 data-testid="post-title">{post.title}</h2>
          <small>
            by @{post.author.nickname}{' '}
            {post.author.id !== currentSession()?.userId && (
              <FollowButton userId={post.author.id} following={post.author.isFollowedByMe} />
            )}
          </small>
        </div>
      </header>
      <p className="body">{post.body}</p>
      <h3>Comments</h3>
      <CommentForm postId={post.id} parentId={null} onDone={add} />
      {thread(null, 0)}
    </article>
  );
}

/** Follows the author, so their posts reach your feed (a private account gets a request instead). */
function FollowButton({ userId, following }: { userId: string; following: boolean }) {
  const [{ data, error, fetching }, follow] = useMutation(FollowAuthor);
  if (following || data?.follow === 'FOLLOWING') return <span data-testid="following">following</span>;
  if (data?.follow === 'REQUESTED') return <span>requested</span>;
  return (
    <button disabled={fetching} onClick={() => follow({ userId })} data-testid="follow" title={error && errorText(error)}>
      Follow
    </button>
  );
}

function CommentForm({
  postId,
  parentId,
  onDone,
}: {
  postId: string;
  parentId: string | null;
  onDone: (comments: CommentFieldsFragment[]) => void;
}) {
  const [body, setBody] = useState('');
  const [{ error, fetching }, addComment] = useMutation(AddComment);
  async function submit(event: FormEvent) {
    event.preventDefault();
    const { data } = await addComment({ postId, body, parentId });
    if (data) {
      onDone([data.createComment]);
      setBody('');
    }
  }
  return (
    <form className="comment-form" onSubmit={submit}>
      <input
        placeholder={parentId ? 'Reply' : 'Add a comment'}
        value={body}
        required
        onChange={(e) => setBody(e.target.value)}
        data-testid={parentId ? 'reply-input' : 'comment-input'}
      />
      <button disabled={fetching}>Send</button>
      {error && <p className="error">{errorText(error)}</p>}
    </form>
  );
}
