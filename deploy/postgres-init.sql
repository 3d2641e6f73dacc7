-- One database per subgraph (each owns its store). Run once by the PostgreSQL image on first start.
CREATE DATABASE parley_users;
CREATE DATABASE parley_social;
CREATE DATABASE parley_posts;
CREATE DATABASE parley_feed;
CREATE DATABASE parley_chat;
CREATE DATABASE parley_media;
CREATE DATABASE parley_notifications;
CREATE DATABASE parley_search;
CREATE DATABASE parley_billing;
CREATE DATABASE parley_analytics;
