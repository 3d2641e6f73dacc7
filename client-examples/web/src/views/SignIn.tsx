// Register or log in; the tokens go to auth.ts.
import { useState, type FormEvent } from 'react';
import { useMutation } from 'urql';
import { graphql } from '../gql';
import { signIn } from '../auth';
import { errorText } from './errors';

const Register = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) { ...AuthFields }
  }
`);

const Login = graphql(`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) { ...AuthFields }
  }
`);

export function SignIn() {
  const [mode, setMode] = useState<'register' | 'login'>('register');
  const [form, setForm] = useState({ email: '', password: '', name: '', nickname: '' });
  const [registerState, register] = useMutation(Register);
  const [loginState, login] = useMutation(Login);
  const error = mode === 'register' ? registerState.error : loginState.error;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (mode === 'register') {
      const { data } = await register({ input: form });
      if (data) signIn(data.register);
    } else {
      const { data } = await login({ email: form.email, password: form.password });
      if (data) signIn(data.login);
    }
  }

  const field = (key: keyof typeof form, label: string, type = 'text') => (
    <label>
      {label}
      <input
        name={key}
        type={type}
        value={form[key]}
        required
        onChange={(e) => setForm({ ...form, [key]: e.target.value })}
      />
    </label>
  );

  return (
    <form className="card signin" onSubmit={submit}>
      <h1>Parley</h1>
      <div className="tabs">
        <button type="button" disabled={mode === 'register'} onClick={() => setMode('register')}>
          Register
        </button>
        <button type="button" disabled={mode === 'login'} onClick={() => setMode('login')}>
          Log in
        </button>
      </div>
      {field('email', 'Email', 'email')}
      {field('password', 'Password', 'password')}
      {mode === 'register' && field('name', 'Name')}
      {mode === 'register' && field('nickname', 'Nickname')}
      {error && <p className="error">{errorText(error)}</p>}
      <button type="submit">{mode === 'register' ? 'Create account' : 'Log in'}</button>
    </form>
  );
}
