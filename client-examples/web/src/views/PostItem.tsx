import { graphql } from '../gql';
import type { PostSummaryFragment } from '../gql/graphql';

export const PostSummary = graphql(`
  fragment PostSummary on Post {
    id
    title
    score
    commentCount
    createdAt
    author { id nickname }
  }
`);

export function PostItem({ post }: { post: PostSummaryFragment }) {
  return (
    <li className="post">
      <span className="score">{post.score}</span>
      <a href={`#/post/${post.id}`}>{post.title}</a>
      <small>
        by @{post.author.nickname} · {post.commentCount} comments
      </small>
    </li>
  );
}
