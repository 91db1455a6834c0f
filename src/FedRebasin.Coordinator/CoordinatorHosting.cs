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
    /// Adds the coordinator: options from the <c>Coordinator</c> section (validated at start-up), the runtime, the gRPC
    /// service, gRPC health checks, server reflection, the per-caller request-rate limit and the background ticker that drives the round state machine's time-based transitions.
    /// </summary>
    public static IServiceCollection AddCoordinator(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        TorchNativeLoader.EnsureLoaded();
        NativeMemory.ReturnLargeBlocksToTheSystem();
        services.AddOptions<CoordinatorOptions>()
            .Bind(configuration.GetSection(CoordinatorOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CoordinatorOptions>, CoordinatorOptionsValidator>());
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
        return services;
    }

    /// <summary>Maps the Federation gRPC service, the gRPC health service and server reflection.</summary>
    public static IEndpointRouteBuilder MapCoordinator(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGrpcService<FederationService>();
        endpoints.MapGrpcHealthChecksService();
        endpoints.MapGrpcReflectionService();
        return endpoints;
    }
}
