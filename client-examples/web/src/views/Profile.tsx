// Your profile and avatar. The upload follows the media flow: `createUpload` returns a signed URL, the
// browser PUTs the file there itself (the bytes never pass through GraphQL), `completeUpload` checks it, and
// once the media is READY `updateProfile(avatarId)` makes it the avatar.
import { useState, type ChangeEvent } from 'react';
import { useClient, useQuery } from 'urql';
import { graphql } from '../gql';
import { errorText } from './errors';
import { refreshCount } from '../auth';

const Me = graphql(`
  query Me {
    me { id nickname name avatarUrl followerCount followingCount }
  }
`);

const CreateUpload = graphql(`
  mutation CreateUpload($input: CreateUploadInput!) {
    createUpload(input: $input) { uploadUrl method headers { name value } media { id } }
  }
`);

const CompleteUpload = graphql(`
  mutation CompleteUpload($id: ID!) {
    completeUpload(id: $id) { id status }
  }
`);

const MediaProcessed = graphql(`
  subscription MediaProcessed($id: ID!) {
    mediaProcessed(id: $id) { id status }
  }
`);

const SetAvatar = graphql(`
  mutation SetAvatar($avatarId: ID!) {
    updateProfile(input: { avatarId: $avatarId }) { id avatarUrl }
  }
`);

export function Profile() {
  const client = useClient();
  const [{ data, error }, refetch] = useQuery({ query: Me });
  const [status, setStatus] = useState<string | null>(null);

  async function upload(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    if (!file) return;
    setStatus('Uploading…');
    const ticket = await client
      .mutation(CreateUpload, {
        input: { fileName: file.name, contentType: file.type, size: file.size, purpose: 'AVATAR' },
      })
      .toPromise();
    if (!ticket.data) return setStatus(ticket.error ? errorText(ticket.error) : 'Upload refused');
    const { uploadUrl, method, headers, media } = ticket.data.createUpload;
    const put = await fetch(uploadUrl, {
      method,
      headers: Object.fromEntries(headers.map((h) => [h.name, h.value])),
      body: file,
    }).catch(() => null);
    if (!put?.ok) return setStatus('The upload did not go through; try again.');
    const done = await client.mutation(CompleteUpload, { id: media.id }).toPromise();
    if (!done.data) return setStatus(done.error ? errorText(done.error) : 'Upload failed');
    if (done.data.completeUpload.status === 'PENDING') {
      setStatus('Processing…');
      await new Promise<void>((resolve) => {
        const { unsubscribe } = client.subscription(MediaProcessed, { id: media.id }).subscribe(() => {
          unsubscribe();
          resolve();
        });
      });
    }
    const set = await client.mutation(SetAvatar, { avatarId: media.id }).toPromise();
    setStatus(set.error ? errorText(set.error) : null);
    refetch({ requestPolicy: 'network-only' });
  }

  if (error) return <p className="error">{errorText(error)}</p>;
  const me = data?.me;
  if (!me) return <p className="loading">Loading…</p>;
  return (
    <section className="card profile">
      {me.avatarUrl ? <img src={me.avatarUrl} alt="" width={96} height={96} data-testid="avatar" /> : <div className="no-avatar" />}
      <h2>{me.name}</h2>
      <p>@{me.nickname} · {me.followerCount} followers · {me.followingCount} following</p>
      <label>
        New avatar <input type="file" accept="image/png,image/jpeg,image/webp" onChange={upload} data-testid="avatar-file" />
      </label>
      {status && <p>{status}</p>}
      <p className="muted" data-testid="refreshes">Access token refreshed {refreshCount} times this visit</p>
    </section>
  );
}
