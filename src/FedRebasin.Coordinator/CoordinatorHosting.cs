using OpenTelemetry.Metrics;
using FedRebasin.Torch.Native;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace FedRebasin.Coordinator;

/// <summary>Registers and maps the coordinator in an ASP.NET Core host.</summary>
public static class CoordinatorHosting
{
    /// <summary>
    /// Adds the coordinator: options from the <c>Coordinator</c> section (validated at start-up; a key no setting binds is refused), the runtime, the gRPC
    /// service, gRPC health checks, server reflection, the per-caller request-rate limit and the background ticker that drives the round state machine's time-based transitions.
    /// </summary>
    public static IServiceCollection AddCoordinator(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        TorchNativeLoader.EnsureLoaded();
        services.AddOptions<CoordinatorOptions>()
            .Bind(configuration.GetSection(CoordinatorOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CoordinatorOptions>, CoordinatorOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CoordinatorOptions>>(new UnknownSettingsValidator(configuration)));
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.TryAddSingleton(provider => new CoordinatorMetrics(provider.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.TryAddSingleton<CoordinatorRuntime>();
        services.TryAddSingleton(provider => new CoordinatorRun(provider.GetRequiredService<CoordinatorRuntime>()));
        services.AddHostedService<CoordinatorTicker>();
        services.TryAddSingleton<RequestRateInterceptor>();
        services.AddGrpc(o => o.Interceptors.Add<RequestRateInterceptor>());
        services.AddGrpcHealthChecks();
        services.AddGrpcReflection();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(CoordinatorMetrics.MeterName).AddPrometheusExporter());
        return services;
    }

    /// <summary>The name of the coordinator's meter (for exporters outside the coordinator's own host).</summary>
    public const string CoordinatorMeterName = CoordinatorMetrics.MeterName;

    /// <summary>
    /// For a process that only serves the coordinator (the CLI's <c>coordinator</c> command, a pod): makes glibc give
    /// freed model-sized blocks back to the system (a fixed mmap threshold), so the working set follows the models held
    /// instead of the largest round seen. Not for processes that also train (the one-box simulation): training
    /// allocates and frees such blocks every batch, and mapping them each time made it about 20% slower.
    /// Returns whether the setting was applied (Linux with glibc).
    /// </summary>
    public static bool TuneNativeMemoryForServing() => NativeMemory.ReturnLargeBlocksToTheSystem();

    /// <summary>Maps the Federation gRPC service, the gRPC health service, server reflection and, with a metrics port, <c>/metrics</c>.</summary>
    public static IEndpointRouteBuilder MapCoordinator(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGrpcService<FederationService>();
        endpoints.MapGrpcHealthChecksService();
        endpoints.MapGrpcReflectionService();
        if (endpoints.ServiceProvider.GetRequiredService<IOptions<CoordinatorOptions>>().Value.MetricsPort is int port)
        {
            // Only on the metrics listener (plain HTTP/1.1, what Prometheus scrapes), never on the gRPC port.
            endpoints.MapPrometheusScrapingEndpoint().RequireHost(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"*:{port}"));
        }
        return endpoints;
    }
}
