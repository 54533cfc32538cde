declare module 'archiver';
