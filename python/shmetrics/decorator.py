"""Decorators that keep the decorated function's signature, as
prometheus_client's (which uses the `decorator` package): frameworks that
inspect handlers (inspect.getfullargspec, which does not follow
__wrapped__, as pytest fixtures and some routers do) see the function's
own parameters, not (*args, **kwargs).

decorate(f, context) returns a function with f's signature whose every
call runs inside context() (a context manager made per call).  A
coroutine function stays one, with the context around the whole await: a
timer measures the coroutine, not its creation.
"""

import collections
import functools
import inspect
import keyword

ArgSpec = collections.namedtuple('ArgSpec', 'args varargs varkw defaults')


def getargspec(f):
    """prometheus_client.decorator.getargspec: (args, varargs, varkw,
    defaults) of f."""
    spec = inspect.getfullargspec(f)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


_RESERVED = {'_func_', '_ctx_', '_defaults_'}


def _source(name, sig, coroutine):
    """def name(<f's parameters>): with _ctx_(): return _func_(<them>),
    defaults referring to _defaults_ (so any object can be one)."""
    params, args = [], []
    star = False
    for i, p in enumerate(sig.parameters.values()):
        text = p.name
        if p.default is not p.empty:
            text += '=_defaults_[%d]' % i
        if p.kind is p.VAR_POSITIONAL:
            text, star = '*' + p.name, True
            args.append('*' + p.name)
        elif p.kind is p.VAR_KEYWORD:
            text = '**' + p.name
            args.append('**' + p.name)
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                params.append('*')
                star = True
            args.append('%s=%s' % (p.name, p.name))
        else:
            args.append(p.name)
        params.append(text)
        if p.kind is p.POSITIONAL_ONLY and (
                i + 1 == len(sig.parameters) or
                list(sig.parameters.values())[i + 1].kind
                is not p.POSITIONAL_ONLY):
            params.append('/')
    head = 'async def' if coroutine else 'def'
    call = ('await ' if coroutine else '') + '_func_(%s)' % ', '.join(args)
    return ('def _make_(_func_, _ctx_, _defaults_):\n'
            '    %s %s(%s):\n'
            '        with _ctx_():\n'
            '            return %s\n'
            '    return %s\n' % (head, name, ', '.join(params), call, name))


def decorate(f, context):
    coroutine = inspect.iscoroutinefunction(f)
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):     # builtins without a signature
        sig = None
    if sig is None or _RESERVED & set(sig.parameters):
        return _plain(f, context, coroutine)
    name = f.__name__ if getattr(f, '__name__', '').isidentifier() and \
        not keyword.iskeyword(f.__name__) else 'wrapper'
    ns = {}
    exec(_source(name, sig, coroutine), ns)
    defaults = [p.default for p in sig.parameters.values()]
    wrapped = ns['_make_'](f, context, defaults)
    return functools.update_wrapper(wrapped, f)


def _plain(f, context, coroutine):
    if coroutine:
        @functools.wraps(f)
        async def awaited(*args, **kwargs):
            with context():
                return await f(*args, **kwargs)
        return awaited

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        with context():
            return f(*args, **kwargs)
    return wrapped
