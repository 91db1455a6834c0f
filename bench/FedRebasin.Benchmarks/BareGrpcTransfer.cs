using System.Diagnostics;
using System.Globalization;
using System.Net;
using FedRebasin.Benchmarks.Bare;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FedRebasin.Benchmarks;

/// <summary>
/// The floor of gRPC bulk transfer on this stack: a bare service (Protos/bare_transfer.proto) on its own Kestrel
/// (127.0.0.1:0, HTTP/2 cleartext, grpc-dotnet defaults) and a client on its own channel, moving the same bytes in the
/// same chunk sizes as the coordinator and its clients, with no federation logic: the server streams slices of a
/// preallocated payload wrapped without copies and discards what it receives; the client copies each downloaded chunk
/// into a preallocated buffer (as a reassembler does) and uploads slices wrapped without copies.
/// </summary>
internal sealed class BareGrpcTransfer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Uri _address;
    private readonly GrpcChannel _channel;
    private readonly BareTransfer.BareTransferClient _client;
    // Channels of their own (one HTTP/2 connection each) for uploads in parts; made on first use.
    private readonly List<GrpcChannel> _partChannels = [];

    private BareGrpcTransfer(WebApplication app, Uri address)
    {
        _app = app;
        _address = address;
        _channel = GrpcChannel.ForAddress(address);
        _client = new BareTransfer.BareTransferClient(_channel);
    }

    /// <summary>Starts the bare server, which will serve <paramref name="payload"/> in chunks of <paramref name="downloadChunkBytes"/>.</summary>
    public static async Task<BareGrpcTransfer> StartAsync(byte[] payload, int downloadChunkBytes)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new BareService(payload, downloadChunkBytes));
        var app = builder.Build();
        app.MapGrpcService<BareService>();
        await app.StartAsync();
        string bound = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new BareGrpcTransfer(app, new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{new Uri(bound).Port}")));
    }

    /// <summary>Downloads the server's payload into <paramref name="destination"/>; returns the seconds the call took.</summary>
    public async Task<double> DownloadAsync(byte[] destination)
    {
        var clock = Stopwatch.StartNew();
        using var call = _client.Download(new BareSize { Bytes = destination.Length }, deadline: DateTime.UtcNow.AddMinutes(10));
        int received = 0;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync())
        {
            chunk.Data.Span.CopyTo(destination.AsSpan(received));
            received += chunk.Data.Length;
        }

        return received == destination.Length
            ? clock.Elapsed.TotalSeconds
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Bare download: {received} of {destination.Length} bytes."));
    }

    /// <summary>Uploads <paramref name="payload"/> in chunks of <paramref name="chunkBytes"/>; returns the seconds until the reply.</summary>
    public async Task<double> UploadAsync(ReadOnlyMemory<byte> payload, int chunkBytes)
    {
        var clock = Stopwatch.StartNew();
        long received = await UploadAsync(_client, payload, chunkBytes);
        return received == payload.Length
            ? clock.Elapsed.TotalSeconds
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Bare upload: the server got {received} of {payload.Length} bytes."));
    }

    /// <summary>
    /// Experiment: uploads <paramref name="payload"/> as <paramref name="parts"/> contiguous parts, each its own client
    /// stream, all at once: on the one channel (HTTP/2 streams multiplexed on one connection) or, with
    /// <paramref name="ownConnections"/>, each on a channel of its own. Returns the seconds until the last reply.
    /// </summary>
    public async Task<double> UploadInPartsAsync(ReadOnlyMemory<byte> payload, int chunkBytes, int parts, bool ownConnections)
    {
        while (ownConnections && _partChannels.Count < parts)
        {
            _partChannels.Add(GrpcChannel.ForAddress(_address));
        }

        long partBytes = (payload.Length + parts - 1) / parts;
        var clock = Stopwatch.StartNew();
        var uploads = Enumerable.Range(0, parts).Select(k =>
        {
            int start = (int)Math.Min(payload.Length, k * partBytes);
            int length = (int)Math.Min(partBytes, payload.Length - start);
            var client = ownConnections ? new BareTransfer.BareTransferClient(_partChannels[k]) : _client;
            return UploadAsync(client, payload.Slice(start, length), chunkBytes);
        }).ToList();
        long[] received = await Task.WhenAll(uploads);
        return received.Sum() == payload.Length
            ? clock.Elapsed.TotalSeconds
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Bare upload in {parts} parts: the server got {received.Sum()} of {payload.Length} bytes."));
    }

    private static async Task<long> UploadAsync(BareTransfer.BareTransferClient client, ReadOnlyMemory<byte> part, int chunkBytes)
    {
        using var call = client.Upload(deadline: DateTime.UtcNow.AddMinutes(10));
        for (int offset = 0; offset < part.Length; offset += chunkBytes)
        {
            var slice = part.Slice(offset, Math.Min(chunkBytes, part.Length - offset));
            await call.RequestStream.WriteAsync(new BareChunk { Data = UnsafeByteOperations.UnsafeWrap(slice) });
        }

        await call.RequestStream.CompleteAsync();
        return (await call.ResponseAsync).Bytes;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _partChannels)
        {
            channel.Dispose();
        }

        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class BareService(byte[] payload, int chunkBytes) : BareTransfer.BareTransferBase
    {
        public override async Task Download(BareSize request, IServerStreamWriter<BareChunk> responseStream, ServerCallContext context)
        {
            int length = (int)Math.Min(request.Bytes, payload.Length);
            for (int offset = 0; offset < length; offset += chunkBytes)
            {
                var slice = payload.AsMemory(offset, Math.Min(chunkBytes, length - offset));
                await responseStream.WriteAsync(new BareChunk { Data = UnsafeByteOperations.UnsafeWrap(slice) }, context.CancellationToken);
            }
        }

        public override async Task<BareSize> Upload(IAsyncStreamReader<BareChunk> requestStream, ServerCallContext context)
        {
            long bytes = 0;
            await foreach (var chunk in requestStream.ReadAllAsync(context.CancellationToken))
            {
                bytes += chunk.Data.Length;
            }

            return new BareSize { Bytes = bytes };
        }
    }
}
